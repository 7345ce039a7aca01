"""The key pair that signs rendition URLs: RSA-2048, as CloudFront takes them.

The private key goes to SSM Parameter Store as a SecureString, where the API and the notifier
read it (``media_pipeline.delivery``), under ``/<name>/cdn/signing-keys/<key id>``; the public
key goes into the deployment's tfvars (``cdn.public_keys``), where Terraform makes it a
CloudFront public key of the distribution's key group. Neither Terraform's state nor its
outputs ever hold the private key. ``scripts/cdn_keys.py`` is the command; the embedded stack
makes its own pair (``devstack.stack``).
"""

from __future__ import annotations

from typing import Any


def parameter_name(name: str, key_id: str) -> str:
    """Where a deployment's private key lives in SSM (terraform/modules/pipeline/cdn.tf)."""
    return f"/{name}/cdn/signing-keys/{key_id}"


def generate() -> tuple[bytes, bytes]:
    """A new pair: (private key PEM, PKCS#8 unencrypted; public key PEM, SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def public_of(private_pem: bytes) -> bytes:
    """The public key PEM of a private key PEM."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def store(ssm: Any, parameter: str, private_pem: bytes, *, overwrite: bool = False) -> None:
    """Put the private key in SSM as a SecureString (the account's ``aws/ssm`` key)."""
    ssm.put_parameter(
        Name=parameter,
        Description="Private key that signs CloudFront URLs of renditions (scripts/cdn_keys.py)",
        Value=private_pem.decode(),
        Type="SecureString",
        Tier="Advanced" if len(private_pem) > 4096 else "Standard",
        Overwrite=overwrite,
    )


def tfvars(key_id: str, public_pem: bytes, signing: bool = True) -> str:
    """The lines of a tfvars file that name this public key (and sign with it)."""
    lines = [
        "cdn = {",
        "  public_keys = {",
        f'    "{key_id}" = <<-EOT',
        *(f"      {line}" for line in public_pem.decode().strip().splitlines()),
        "    EOT",
        "  }",
    ]
    if signing:
        lines.append(f'  signing_key = "{key_id}"')
    lines.append("}")
    return "\n".join(lines) + "\n"
