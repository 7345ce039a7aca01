"""docker-compose.yml runs what the Terraform needs on LocalStack (no Docker engine needed here:
the file is parsed and checked against the Terraform itself)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from devstack import localstack as devstack_localstack

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"

# Which AWS API serves each kind of Terraform resource or data source (longest prefix wins).
SERVICE_OF_PREFIX = {
    "aws_s3_": "s3",
    "aws_sqs_": "sqs",
    "aws_sns_": "sns",
    "aws_lambda_": "lambda",
    "aws_dynamodb_": "dynamodb",
    "aws_iam_": "iam",
    "aws_kms_": "kms",
    "aws_cloudwatch_event_": "events",
    "aws_cloudwatch_log_": "logs",
    "aws_cloudwatch_metric_alarm": "cloudwatch",
    "aws_cloudwatch_dashboard": "cloudwatch",
    "aws_api_gateway_": "apigateway",
    "aws_cloudfront_": "cloudfront",
    "aws_caller_identity": "sts",
    "aws_partition": None,  # computed by the provider, no API call
    "aws_region": None,
}


def terraform_types() -> set[str]:
    types = set()
    for path in TERRAFORM.rglob("*.tf"):
        if ".terraform" not in path.parts:
            types |= set(
                re.findall(r'^(?:resource|data) "(aws_[a-z0-9_]+)"', path.read_text(), re.M)
            )
    return types


def service_of(kind: str) -> str | None:
    prefixes = [p for p in SERVICE_OF_PREFIX if kind.startswith(p)]
    assert prefixes, f"{kind}: which AWS API serves it? Add it to SERVICE_OF_PREFIX"
    return SERVICE_OF_PREFIX[max(prefixes, key=len)]


def needed_services() -> set[str]:
    needed = {service_of(kind) for kind in terraform_types()} - {None}
    # The notifier's event source is the media table's stream: DynamoDB Streams' own API.
    if re.search(r"event_source_arn\s*=\s*aws_dynamodb_table\.\w+\.stream_arn", _all_tf()):
        needed.add("dynamodbstreams")
    return needed


def _all_tf() -> str:
    return "\n".join(p.read_text() for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


@pytest.fixture(scope="module")
def localstack() -> dict:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["localstack"]
    service["_volumes"] = compose.get("volumes") or {}
    return service


def test_the_emulator_endpoints_of_the_provider_cover_every_api_the_terraform_calls():
    # the one provider override: the emulators' root and the plans of the production root
    # against an emulator (plan-check, the deployment tests) both use it
    providers = (TERRAFORM / "envs" / "local" / "provider_override.tf").read_text()
    block = re.search(r"^  endpoints \{(.*?)^  \}", providers, re.S | re.M)
    assert block, "terraform/envs/local/provider_override.tf maps aws_endpoint_url to every API"
    endpoints = set(re.findall(r"^\s*(\w+)\s*=\s*var\.aws_endpoint_url$", block.group(1), re.M))
    assert needed_services() - {"dynamodbstreams"} <= endpoints


def test_localstack_runs_exactly_the_services_the_terraform_needs(localstack):
    services = set(localstack["environment"]["SERVICES"].split(","))
    # LocalStack's stacks are applied without the CDN: the community edition has no CloudFront
    assert json.loads(devstack_localstack.VARIABLES["cdn"]) == {"enabled": False}
    needed = needed_services() - {"cloudfront"}
    assert needed <= services, f"missing: {sorted(needed - services)}"
    # apigateway: the REST API in front of the pipeline; nothing else is started.
    assert services - needed <= {"apigateway"}, f"not used: {sorted(services - needed)}"


def test_localstack_is_pinned_healthy_local_only_and_runs_lambdas_in_docker(localstack):
    image, _, tag = localstack["image"].partition(":")
    assert image == "localstack/localstack"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"pin a release, not {tag!r}"
    assert "/_localstack/health" in " ".join(localstack["healthcheck"]["test"])
    assert all(str(p).startswith("127.0.0.1:") for p in localstack["ports"])
    mounts = {v.split(":")[0]: v.split(":")[1] for v in localstack["volumes"]}
    assert mounts["/var/run/docker.sock"] == "/var/run/docker.sock"
    named = [source for source in mounts if source in localstack["_volumes"]]
    assert named, "LocalStack's data lives in a named volume"


def test_localstack_starts_without_an_account_and_hands_out_host_reachable_urls(localstack):
    # 4.14.0 is the last release that starts without LOCALSTACK_AUTH_TOKEN (docs/local.md)
    version = tuple(int(n) for n in localstack["image"].partition(":")[2].split("."))
    assert (4, 0, 0) <= version <= (4, 14, 0)
    assert localstack["environment"]["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"
    # the functions' endpoint (and so the presigned URLs of the api function) resolves on the
    # host as well as in the Lambda containers, not a Docker bridge IP
    assert localstack["environment"]["HOSTNAME_FROM_LAMBDA"] == "localhost.localstack.cloud"
