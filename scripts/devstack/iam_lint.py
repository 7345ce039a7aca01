"""Every IAM policy the Terraform makes, linted offline (``make lint``).

    python -m devstack.iam_lint [--var-file terraform/envs/prod.tfvars.example] [--state FILE]

The linter is parliament (duo-labs), which carries its own database of every service's actions,
resource types and condition keys (``parliament/iam_definition.json``, from AWS's Service
Authorization Reference) and needs no AWS account: an unknown action or service prefix
(UNKNOWN_ACTION, UNKNOWN_PREFIX), an action whose resource types do not match the statement's
ARNs (RESOURCE_MISMATCH: e.g. ``s3:GetObject`` on a bucket ARN, ``dynamodb:ListStreams`` on
anything but ``*``), ``*`` where the action takes an ARN (RESOURCE_STAR), unknown condition keys,
malformed documents. Every finding fails, but for two of parliament's own mistakes
(``_false_positive``: a trust policy read as an identity policy, a DynamoDB stream's ARN) and a
key policy's ``"*"``, which means the key.

Policies whose ARNs Terraform only knows once the resources exist cannot be read from a plan.
So the policies are made for real, on a throwaway moto server (with moto_patches, which
Terraform's SQS queues need): the production root
(``terraform/envs/aws``) with the production example's variables plus a customer-managed key
(``kms_key_arn``, so that the statements that exist only with one are linted too) is planned,
then only the policies and what they are made of are applied (``-target``: roles and their
policies, queues, bucket and topic policies, keys; no function, layer or API), and every
document is read from the state: roles' inline policies and trust policies, managed policies,
bucket, queue and topic policies, key policies. ``--state`` lints an existing state instead
(e.g. ``.local/terraform.tfstate`` of the embedded stack).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tooling import functions, plan_check, terraform
from tooling.pythons import HOST_ARCH, host_runtime

from devstack import iam_policy, moto_patches

PROD_EXAMPLE = terraform.ENVS_DIR / "prod.tfvars.example"
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"

# Resource types whose documents are linted, and the attributes that hold them.
POLICY_ATTRIBUTES = {
    "aws_iam_role_policy": ("policy", "identity"),
    "aws_iam_policy": ("policy", "identity"),
    "aws_iam_role": ("assume_role_policy", "trust"),
    "aws_s3_bucket_policy": ("policy", "resource"),
    "aws_sqs_queue": ("policy", "resource"),
    "aws_sqs_queue_policy": ("policy", "resource"),
    "aws_sns_topic_policy": ("policy", "resource"),
    "aws_kms_key": ("policy", "resource"),
}
# What a plan must apply for those documents to be known (besides the types above).
SOURCES = {
    "aws_dynamodb_table",
    "aws_s3_bucket",
    "aws_cloudwatch_log_group",
    "aws_cloudwatch_event_rule",
}

# Findings about the policy language rather than a permission, which parliament reports for
# documents that are right as they are.
IGNORED_ISSUES = {
    # a key policy's "*" means the key itself
    ("resource", "RESOURCE_STAR"),
}
# parliament reads every policy as an identity policy: a trust policy has no Resource.
_TRUST_HAS_NO_RESOURCE = "Statement contains neither Resource nor NotResource"
# A DynamoDB stream's ARN ends in a time with colons (table/t/stream/2015-05-11T21:21:33.291);
# parliament splits ARNs at every colon, so it finds the right ARN of the wrong format.
_STREAM_FORMAT = "arn:*:dynamodb:*:*:table/*/stream/*"


def _false_positive(kind: str, issue: str, detail: Any, document: dict[str, Any]) -> bool:
    if kind == "trust" and issue == "MALFORMED" and detail == _TRUST_HAS_NO_RESOURCE:
        return True
    if issue != "RESOURCE_MISMATCH" or not isinstance(detail, dict):
        return False
    if detail.get("required_format") != _STREAM_FORMAT:
        return False
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        if iam_policy.action_matches(
            actions if isinstance(actions, list) else [actions], detail["action"]
        ):
            resources = statement.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            return all(iam_policy.matches(_STREAM_FORMAT, r) for r in resources)
    return False


def documents(shown: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(address, kind, JSON document) of every policy in ``terraform show -json`` of a state."""

    def walk(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from walk(child)

    root = shown.get("values", {}).get("root_module", {})
    for resource in walk(root):
        if resource.get("mode") != "managed" or resource["type"] not in POLICY_ATTRIBUTES:
            continue
        attribute, kind = POLICY_ATTRIBUTES[resource["type"]]
        document = (resource.get("values") or {}).get(attribute)
        if document:
            yield resource["address"], kind, document


def lint(address: str, kind: str, document: str) -> list[str]:
    """parliament's findings for one document, as lines; [] when there are none to report."""
    from parliament import analyze_policy_string  # noqa: PLC0415 - a development dependency

    policy = analyze_policy_string(document, ignore_private_auditors=True)
    lines = []
    parsed = json.loads(document)
    for finding in policy.findings:
        if (kind, finding.issue) in IGNORED_ISSUES:
            continue
        details = finding.detail if isinstance(finding.detail, list) else [finding.detail]
        for detail in details:
            if not _false_positive(kind, finding.issue, detail, parsed):
                lines.append(f"{address} ({kind} policy): {finding.issue}: {detail}")
    return lines


def _targets(shown_plan: dict[str, Any]) -> list[str]:
    wanted = set(POLICY_ATTRIBUTES) | SOURCES
    return sorted(
        change["address"]
        for change in shown_plan.get("resource_changes", [])
        if change["mode"] == "managed" and change["type"] in wanted
    )


def _fake_packages(build_dir: Path, runtime: str, arch: str) -> None:
    """Empty zips where the functions' and layers' packages would be: the plan hashes them,
    and nothing that uses them is applied."""
    directory = build_dir / f"{runtime}-{arch}"
    directory.mkdir(parents=True, exist_ok=True)
    listed = functions.load()
    names = set(listed) | {layer for layers in listed.values() for layer in layers}
    for name in names:
        with zipfile.ZipFile(directory / f"{name}.zip", "w") as archive:
            archive.writestr("EMPTY", "")


def applied_policies(var_file: Path) -> dict[str, Any]:
    """``terraform show -json`` of a state holding the production root's policies (see the
    module's docstring)."""
    runtime, arch = host_runtime(), HOST_ARCH
    moto_patches.apply()  # in this process, where the emulator runs
    credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    with tempfile.TemporaryDirectory(prefix="iam-lint-") as tmp, plan_check.emulator() as endpoint:
        work = Path(tmp)
        _fake_packages(work / "build", runtime, arch)
        variables = {
            "lambda_runtime": runtime,
            "lambda_architecture": arch,
            "build_dir": str(work / "build"),
            "kms_key_arn": KMS_KEY,
        }
        env = terraform.environment(work, credentials)
        root = terraform.staged_root(terraform.AWS_ROOT, work / "stage", endpoint=endpoint)
        print(f"==> planning {var_file.name} (with kms_key_arn) against a throwaway emulator")
        shown_plan = terraform.plan(env, root, work / "plan", variables, [var_file])
        targets = _targets(shown_plan)
        print(f"==> applying the {len(targets)} resources the policies are made of")
        env = {**env, "TF_DATA_DIR": str(work / "plan" / ".terraform")}
        state = work / "lint.tfstate"
        args = ["apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=30"]
        args += [f"-state={state}", *terraform.variable_args(variables, [var_file])]
        args += [f"-target={t}" for t in targets]
        terraform.run(args, env, log=work / "apply.log", chdir=root)
        return json.loads(
            terraform.run(["show", "-json", str(state)], env, capture=True, chdir=root)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.iam_lint", description=__doc__)
    parser.add_argument("--var-file", type=Path, default=PROD_EXAMPLE)
    parser.add_argument("--state", type=Path, help="lint this state file instead")
    args = parser.parse_args(argv)
    try:
        if args.state:
            shown = json.loads(
                terraform.run(
                    ["show", "-json", str(args.state.resolve())],
                    terraform.environment(terraform.STATE_DIR),
                    capture=True,
                    chdir=terraform.LOCAL_ROOT,
                )
            )
        else:
            shown = applied_policies(args.var_file)
    except terraform.TerraformError as error:
        print(f"iam-lint: {error}", file=sys.stderr)
        return 1
    found = list(documents(shown))
    problems = [line for address, kind, doc in found for line in lint(address, kind, doc)]
    kinds = {kind for _, kind, _ in found}
    print(
        f"iam-lint (parliament): {len(found)} policy documents "
        f"({', '.join(sorted(kinds))}), {len(problems)} finding(s)"
    )
    for line in problems:
        print(f"  {line}")
    return 1 if problems or not found else 0


if __name__ == "__main__":
    sys.exit(main())
