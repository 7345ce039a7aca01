#!/usr/bin/env python3
"""Make a key pair that signs a deployment's rendition URLs (``make cdn-key``; docs/deploy.md,
"The CDN").

    python scripts/cdn_keys.py --tfvars terraform/envs/prod.tfvars --key-id prod-2026-12
    python scripts/cdn_keys.py --name media-pipeline --region eu-west-1 --key-id k2 [--overwrite]

Generates an RSA-2048 pair on this machine, puts the private key in SSM Parameter Store as a
SecureString under ``/<name>/cdn/signing-keys/<key id>`` (with the AWS credentials of the
environment: the deployment's account), and prints the lines to put in the tfvars: the public
key under ``cdn.public_keys`` and ``cdn.signing_key``. The private key is written nowhere else:
not to disk, not to Terraform's state. An existing parameter is kept unless ``--overwrite``.
Exit status 0 on success, 1 if the parameter exists, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import boto3
from tooling import cdn_keys


def _from_tfvars(path: Path, variable: str) -> str | None:
    match = re.search(rf'^{variable}\s*=\s*"([^"]+)"', path.read_text(), re.M)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tfvars", type=Path, help="the deployment's tfvars (name, region)")
    parser.add_argument("--name", help="the deployment's name (variable name)")
    parser.add_argument("--region", help="the deployment's region")
    parser.add_argument("--key-id", required=True, help="an id for the key, e.g. prod-2026-12")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing key")
    args = parser.parse_args(argv)
    name = args.name or (_from_tfvars(args.tfvars, "name") if args.tfvars else None)
    region = args.region or (_from_tfvars(args.tfvars, "region") if args.tfvars else None)
    if not name or not region:
        parser.error("give --tfvars, or --name and --region")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args.key_id):
        parser.error("--key-id: letters, digits, - and _ (at most 64)")

    ssm = boto3.client("ssm", region_name=region)
    parameter = cdn_keys.parameter_name(name, args.key_id)
    private_pem, public_pem = cdn_keys.generate()
    try:
        cdn_keys.store(ssm, parameter, private_pem, overwrite=args.overwrite)
    except ssm.exceptions.ParameterAlreadyExists:
        print(f"{parameter} exists already: pick another --key-id, or --overwrite", file=sys.stderr)
        return 1
    print(f"private key stored in SSM Parameter Store: {parameter} (SecureString)", file=sys.stderr)
    print("add to the tfvars (a rotation: keep the old key beside it until its URLs expire):\n")
    print(cdn_keys.tfvars(args.key_id, public_pem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
