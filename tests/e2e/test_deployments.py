"""The production example plans cleanly without an AWS account, and holds exactly what the
local stack runs plus the production extras.

`terraform plan` of terraform/envs/prod.tfvars.example with the production root
(terraform/envs/aws) runs against the embedded stack's endpoints (credentials, account and region
answered by the emulator; nothing is applied), from an empty state, beside a plan of the local
configuration (terraform/envs/local). The production root holds no endpoint setting: it is
planned from a staged copy with a provider override file (terraform.staged_root). The packages
are the ones built for this host: a package's architecture changes attribute values, not which
resources exist. Addresses below are those inside the pipeline module, which both roots call.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from devstack import stack
from tooling import terraform
from tooling.functions import FUNCTIONS

pytestmark = pytest.mark.embedded_only("plans the production example against its endpoints")

ENVS = terraform.ENVS_DIR
PROD_EXAMPLE = ENVS / "prod.tfvars.example"
MONITORING = terraform.TERRAFORM_DIR / "modules" / "pipeline" / "monitoring.tf"
MODULE = "module.pipeline."
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000"


def declared(path: Path) -> set[str]:
    """type.name of every resource a Terraform file declares."""
    return {
        f"{t}.{n}" for t, n in re.findall(r'^resource "([^"]+)" "([^"]+)"', path.read_text(), re.M)
    }


def base_address(address: str) -> str:
    return re.sub(r"\[[^\]]*\]", "", address)


def in_module(planned: dict[str, dict]) -> dict[str, dict]:
    """The planned resources by their address inside the pipeline module (all are in it)."""
    outside = [a for a in planned if not a.startswith(MODULE)]
    assert not outside, f"resources outside module.pipeline: {outside}"
    return {a.removeprefix(MODULE): v for a, v in planned.items()}


@pytest.fixture(scope="module")
def plans(local_stack: stack.Stack, tmp_path_factory: pytest.TempPathFactory):
    env = terraform.environment(
        local_stack.state_dir,
        {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_CA_BUNDLE": str(local_stack.ca_bundle),
        },
    )
    host = stack.target_variables(local_stack.endpoint, stack.host_runtime())
    packages = {k: v for k, v in host.items() if k != "aws_endpoint_url"}
    work = tmp_path_factory.mktemp("plans")
    aws = terraform.staged_root(terraform.AWS_ROOT, work / "aws", endpoint=local_stack.endpoint)
    # the local stack's own CDN key pair and edge, as `make up` applies them
    local = {
        **host,
        "region": stack.REGION,
        **stack.cdn_variables(local_stack, stack.THIS_CHECKOUT),
    }
    return {
        "local": in_module(
            terraform.planned_resources(
                env,
                terraform.emulator_root(terraform.LOCAL_ROOT, work / "local-root"),
                work / "local",
                local,
                [ENVS / "local.tfvars"],
            )
        ),
        "prod": in_module(
            terraform.planned_resources(env, aws, work / "prod", packages, [PROD_EXAMPLE])
        ),
        "prod_kms": in_module(
            terraform.planned_resources(
                env, aws, work / "prod-kms", {**packages, "kms_key_arn": KMS_KEY}, [PROD_EXAMPLE]
            )
        ),
    }


def test_the_production_plan_is_the_local_stack_plus_only_the_monitoring_extras(plans):
    # by base address: the CDN's public keys are keyed by their ids, which differ
    local = {base_address(a) for a in plans["local"]}
    prod = {base_address(a) for a in plans["prod"]}
    # The example also lets a browser app upload (cors_allowed_origins): the bucket's CORS rule;
    # and keeps deleted or overwritten originals restorable (uploads_versioning).
    extras = declared(MONITORING) | {
        "module.uploads_bucket.aws_s3_bucket_cors_configuration.this",
        "module.uploads_bucket.aws_s3_bucket_versioning.this",
    }

    # Production adds resources only from monitoring.tf ...
    assert prod - local
    assert prod - local <= extras, sorted(prod - local)
    # ... and lacks only the Powertools layer, which it takes from AWS's published ARN.
    assert local - prod == {"aws_lambda_layer_version.powertools"}
    # The local stacks carry none of the extras (what CI applies is the pipeline itself).
    assert not local & extras


def test_the_production_example_alarms_on_what_needs_a_person(plans):
    prod = plans["prod"]
    alarms = {
        values["metric_name"]
        for address, values in prod.items()
        if address.startswith(("aws_cloudwatch_metric_alarm.", "module."))
        and "metric_name" in values
    }
    assert {
        "ApproximateNumberOfMessagesVisible",  # DLQ depth
        "Errors",
        "Throttles",
        "ApproximateAgeOfOldestMessage",
        "IteratorAge",
        "5XXError",  # the upload API
    } <= alarms
    assert "aws_cloudwatch_dashboard.this[0]" in prod
    functions = {a: v for a, v in prod.items() if a.endswith("aws_lambda_function.this")}
    # one function per entry of lambdas/functions.json, each in the module of its name
    assert sorted(a.split(".")[1] for a in functions) == sorted(FUNCTIONS)
    assert all(f["tracing_config"] == [{"mode": "Active"}] for f in functions.values())
    log_groups = [v for a, v in prod.items() if a.endswith("aws_cloudwatch_log_group.this")]
    assert {g["retention_in_days"] for g in log_groups} == {90}
    # The alarm topic is encrypted with a key CloudWatch may use (not alias/aws/sns, which it
    # may not): its own, planned with it.
    assert "aws_sns_topic.alarms[0]" in prod
    assert prod["aws_kms_key.alarms[0]"]["enable_key_rotation"] is True
    # nothing deletable by accident in production
    tables = [v for a, v in prod.items() if a.startswith("aws_dynamodb_table.")]
    assert len(tables) == 3  # media, idempotency, duplicates
    assert all(t["deletion_protection_enabled"] for t in tables)


def test_a_customer_managed_key_reaches_every_function_log_group_and_store(plans):
    planned = plans["prod_kms"]

    def by_type(kind: str) -> dict[str, dict]:
        return {a: v for a, v in planned.items() if base_address(a).endswith(kind)}

    functions = by_type("aws_lambda_function.this")
    assert len(functions) == len(FUNCTIONS)
    assert {a: v["kms_key_arn"] for a, v in functions.items()} == dict.fromkeys(functions, KMS_KEY)
    log_groups = by_type("aws_cloudwatch_log_group.this")
    assert {a: v["kms_key_id"] for a, v in log_groups.items()} == dict.fromkeys(log_groups, KMS_KEY)
    queues = by_type("aws_sqs_queue.this") | by_type("aws_sqs_queue.dlq")
    assert {v["kms_master_key_id"] for v in queues.values()} == {KMS_KEY}
    tables = (
        by_type("aws_dynamodb_table.media")
        | by_type("aws_dynamodb_table.idempotency")
        | by_type("aws_dynamodb_table.duplicates")
    )
    assert [t["server_side_encryption"][0]["kms_key_arn"] for t in tables.values()] == [KMS_KEY] * 3


def test_only_the_local_stack_is_disposable(plans):
    # terraform/envs/local sets disposable; terraform/envs/aws cannot (docs/deploy.md: tearing down)
    for name, disposable in (("local", True), ("prod", False)):
        planned = plans[name]
        tables = [v for a, v in planned.items() if a.startswith("aws_dynamodb_table.")]
        buckets = [v for a, v in planned.items() if a.endswith("aws_s3_bucket.this")]
        assert len(tables) == 3
        assert len(buckets) == 2
        assert {t["deletion_protection_enabled"] for t in tables} == {not disposable}, name
        assert {b["force_destroy"] for b in buckets} == {disposable}, name


def test_the_production_example_serves_renditions_through_a_signed_private_cdn(plans):
    prod = plans["prod"]
    (distribution,) = [v for a, v in prod.items() if a.startswith("aws_cloudfront_distribution.")]
    (behaviour,) = distribution["default_cache_behavior"]
    assert behaviour["viewer_protocol_policy"] == "https-only"
    assert behaviour["allowed_methods"] == ["GET", "HEAD"]
    assert behaviour["compress"] is False
    (origin,) = distribution["origin"]
    assert not origin.get("s3_origin_config")  # Origin Access Control, not the legacy OAI
    assert "aws_cloudfront_origin_access_control.renditions[0]" in prod
    # signed URLs only: the key group (its id, in the behaviour, is known after apply) of the
    # example's one public key
    assert "aws_cloudfront_key_group.signing[0]" in prod
    keys = [v for a, v in prod.items() if a.startswith("aws_cloudfront_public_key.")]
    assert [k["name"] for k in keys] == ["media-pipeline-example-2026-12"]
    assert keys[0]["encoded_key"].startswith("-----BEGIN PUBLIC KEY-----")
    (policy,) = [v for a, v in prod.items() if a.startswith("aws_cloudfront_cache_policy.")]
    (config,) = policy["parameters_in_cache_key_and_forwarded_to_origin"]
    assert config["enable_accept_encoding_gzip"] is False
    # the private key is in SSM only (make cdn-key): nothing planned holds one
    assert not any("PRIVATE KEY" in str(v) for v in prod.values())
