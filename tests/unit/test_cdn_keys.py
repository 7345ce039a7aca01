"""scripts/cdn_keys.py (make cdn-key): the private key goes to SSM only, the tfvars get the
public key."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from tooling import cdn_keys

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cdn_keys.py"


def _script():
    spec = importlib.util.spec_from_file_location("cdn_keys_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tfvars(tmp_path: Path) -> Path:
    path = tmp_path / "prod.tfvars"
    path.write_text('name   = "photos"\nregion = "eu-west-1"\n')
    return path


@mock_aws
def test_private_key_in_ssm_public_key_in_the_printed_tfvars(
    tfvars: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _script().main(["--tfvars", str(tfvars), "--key-id", "prod-2026-12"]) == 0

    ssm = boto3.client("ssm", region_name="eu-west-1")
    parameter = ssm.get_parameter(Name="/photos/cdn/signing-keys/prod-2026-12", WithDecryption=True)
    assert parameter["Parameter"]["Type"] == "SecureString"
    private_pem = parameter["Parameter"]["Value"].encode()
    out = capsys.readouterr().out
    assert "PRIVATE KEY" not in out
    printed = re.search(r"(-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----)", out, re.S)
    assert printed is not None
    public_lines = [line.strip() for line in printed.group(1).splitlines()]
    assert public_lines == cdn_keys.public_of(private_pem).decode().strip().splitlines()
    assert '"prod-2026-12" = <<-EOT' in out
    assert 'signing_key = "prod-2026-12"' in out


@mock_aws
def test_an_existing_key_is_kept_unless_overwrite(tfvars: Path) -> None:
    script = _script()
    ssm = boto3.client("ssm", region_name="eu-west-1")
    name = "/photos/cdn/signing-keys/k1"
    assert script.main(["--tfvars", str(tfvars), "--key-id", "k1"]) == 0
    first = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]

    assert script.main(["--tfvars", str(tfvars), "--key-id", "k1"]) == 1
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == first

    assert script.main(["--tfvars", str(tfvars), "--key-id", "k1", "--overwrite"]) == 0
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] != first


@pytest.mark.parametrize(
    "argv",
    [
        ["--key-id", "k1"],  # neither tfvars nor name and region
        ["--name", "photos", "--region", "eu-west-1", "--key-id", "bad id"],
        ["--name", "photos", "--region", "eu-west-1", "--key-id", "x" * 65],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _script().main(argv)
    assert exited.value.code == 2
