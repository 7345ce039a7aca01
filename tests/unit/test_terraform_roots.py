"""The roots of the pipeline module: terraform/envs/aws (production) carries no emulator
setting and passes the module every variable and output unchanged; the emulators' root is that
root plus terraform/envs/local (a variables file and override files), and nothing else. Also how
make plan-check follows moved blocks (scripts/tooling/plan_check.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tooling import plan_check, terraform

MODULE = terraform.TERRAFORM_DIR / "modules" / "pipeline"
# What only an emulator needs: endpoints, skipped checks, a throwaway stack, bundled layers.
EMULATOR_SETTINGS = (
    r"\bendpoints\s*\{",
    r"\bskip_\w+\s*=",
    r"\bs3_use_path_style\b",
    r"\baws_endpoint_url\b",
    r"\bdisposable\b",
    r"\bbundle_layers\b",
    r"\bcdn_edge_url\b",
)


def variables(path: Path) -> set[str]:
    return set(re.findall(r'^variable "(\w+)"', path.read_text(), re.M))


def outputs(path: Path) -> set[str]:
    return set(re.findall(r'^output "(\w+)"', path.read_text(), re.M))


def module_arguments(path: Path) -> dict[str, str]:
    block = re.search(r'^module "pipeline" \{\n(.*?)^\}', path.read_text(), re.M | re.S)
    assert block, f"{path}: no module pipeline"
    return dict(re.findall(r"^  (\w+)\s*=\s*(.+)$", block.group(1), re.M))


def test_the_production_root_carries_no_emulator_setting():
    for path in sorted(terraform.AWS_ROOT.glob("*.tf")):
        text = re.sub(r"#.*", "", path.read_text())  # comments may say what is not here
        found = [setting for setting in EMULATOR_SETTINGS if re.search(setting, text)]
        assert not found, f"{path.name}: {found}"
    emulator_only = {"disposable", "bundle_layers", "cdn_edge_url"}
    assert not (module_arguments(terraform.AWS_ROOT / "main.tf").keys() & emulator_only)


def test_the_emulator_settings_are_variables_of_the_module_that_only_envs_local_sets():
    emulator = variables(MODULE / "emulators.tf")
    assert emulator == {"disposable", "bundle_layers", "cdn_edge_url"}
    local = module_arguments(terraform.LOCAL_ROOT / "pipeline_override.tf")
    assert local == {
        "disposable": "true",
        "bundle_layers": "var.bundle_layers",
        "cdn_edge_url": "var.cdn_edge_url",
    }


def test_envs_local_adds_to_the_production_root_and_repeats_none_of_it():
    files = sorted(p.name for p in terraform.LOCAL_ROOT.iterdir())
    assert files == ["emulator.tf", "pipeline_override.tf", "provider_override.tf"]
    assert not [p for p in terraform.LOCAL_ROOT.iterdir() if p.is_symlink()]
    # it declares only what an emulator alone needs
    assert variables(terraform.LOCAL_ROOT / "emulator.tf") == {
        "aws_endpoint_url",
        "bundle_layers",
        "cdn_edge_url",
    }
    assert not variables(terraform.LOCAL_ROOT / "emulator.tf") & variables(MODULE / "variables.tf")


def test_the_emulator_root_is_the_production_root_plus_envs_local(tmp_path):
    root = terraform.emulator_root(terraform.LOCAL_ROOT, tmp_path)
    staged = {p.name: p.resolve() for p in root.glob("*.tf")}
    expected = {p.name: p.resolve() for p in terraform.AWS_ROOT.glob("*.tf")}
    expected |= {p.name: p.resolve() for p in terraform.LOCAL_ROOT.glob("*.tf")}
    assert staged == expected
    assert (root / "../../modules/pipeline/main.tf").resolve() == (MODULE / "main.tf").resolve()
    assert terraform.emulator_files(terraform.LOCAL_ROOT) == sorted(
        terraform.AWS_ROOT.glob("*.tf")
    ) + sorted(terraform.LOCAL_ROOT.glob("*.tf"))


def test_a_tree_from_before_the_overlay_keeps_its_whole_emulator_root(tmp_path):
    (tmp_path / "main.tf").write_text('module "pipeline" {}\n')
    assert terraform.emulator_root(tmp_path, tmp_path / "stage") == tmp_path


def test_the_production_root_passes_every_variable_of_the_module_unchanged():
    # one declaration of the production variables: the root links the module's file
    assert (terraform.AWS_ROOT / "variables.tf").resolve() == (MODULE / "variables.tf").resolve()
    arguments = module_arguments(terraform.AWS_ROOT / "main.tf")
    assert arguments["source"] == '"../../modules/pipeline"'
    passed = {k for k, v in arguments.items() if v == f"var.{k}"}
    assert variables(MODULE / "variables.tf") <= passed


def test_the_production_root_keeps_the_outputs_of_the_module_under_their_names():
    path = terraform.AWS_ROOT / "outputs.tf"
    assert outputs(path) == outputs(MODULE / "outputs.tf")
    text = path.read_text()
    for output in outputs(path):
        assert f"value       = module.pipeline.{output}\n" in text


def test_the_provider_override_points_every_api_at_the_emulator():
    override = (terraform.LOCAL_ROOT / "provider_override.tf").read_text()
    assert "skip_credentials_validation = true" in override
    assert "default_tags" not in override  # the production root's tags stay


def test_a_staged_root_resolves_its_modules_and_gets_the_provider_override(tmp_path):
    copy = terraform.staged_root(terraform.AWS_ROOT, tmp_path, endpoint="http://127.0.0.1:5000")
    assert copy == tmp_path / "terraform" / "envs" / "aws"
    assert (copy / "../../modules/pipeline/main.tf").resolve() == (MODULE / "main.tf").resolve()
    assert (copy / "main.tf").read_text() == (terraform.AWS_ROOT / "main.tf").read_text()
    assert "endpoints {" in (copy / "provider_override.tf").read_text()
    assert not (copy / "pipeline_override.tf").exists()  # the production settings stay
    assert (copy / "emulator.auto.tfvars").read_text() == (
        'aws_endpoint_url = "http://127.0.0.1:5000"\n'
    )
    lock = copy / ".terraform.lock.hcl"
    assert lock.is_file()
    assert not lock.is_symlink()  # init may rewrite it: never the repository's
    assert not list(terraform.AWS_ROOT.glob("*override*"))


MOVES = [
    ("module.thumbnail", "module.pipeline.module.thumbnail"),
    (
        "aws_cloudwatch_metric_alarm.monitoring",
        "module.pipeline.aws_cloudwatch_metric_alarm.monitoring",
    ),
    (
        "aws_cloudwatch_event_target.deletions",
        'module.pipeline.aws_cloudwatch_event_target.uploads["d"]',
    ),
    ("aws_lambda_layer_version.pillow", "module.pipeline.aws_lambda_layer_version.pillow"),
    # inside the module (a legacy move from a resource to its first instance)
    (
        "module.pipeline.aws_lambda_layer_version.pillow",
        "module.pipeline.aws_lambda_layer_version.pillow[0]",
    ),
]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        # a module call moves with everything inside it
        (
            "module.thumbnail.module.queue.aws_sqs_queue.dlq[0]",
            "module.pipeline.module.thumbnail.module.queue.aws_sqs_queue.dlq[0]",
        ),
        # a resource without an index moves with every instance
        (
            'aws_cloudwatch_metric_alarm.monitoring["api-5xx"]',
            'module.pipeline.aws_cloudwatch_metric_alarm.monitoring["api-5xx"]',
        ),
        (
            "aws_cloudwatch_event_target.deletions",
            'module.pipeline.aws_cloudwatch_event_target.uploads["d"]',
        ),
        # chains: a key-less instance from before count, then into the module
        ("aws_lambda_layer_version.pillow", "module.pipeline.aws_lambda_layer_version.pillow[0]"),
        # ... while an instance with a key only moves into the module
        (
            "aws_lambda_layer_version.pillow[0]",
            "module.pipeline.aws_lambda_layer_version.pillow[0]",
        ),
        # a prefix of a name is not the name
        ("module.thumbnails.aws_sqs_queue.this", "module.thumbnails.aws_sqs_queue.this"),
        ("aws_dynamodb_table.media", "aws_dynamodb_table.media"),
    ],
)
def test_plan_check_follows_moved_blocks_the_way_terraform_does(address, expected):
    assert plan_check.follow(address, MOVES) == expected


def test_plan_check_reads_the_moved_blocks_of_the_root_and_of_the_modules_it_calls():
    configuration = {
        "root_module": {
            "module_calls": {
                "pipeline": {"source": "../../modules/pipeline", "module": {"module_calls": {}}}
            }
        }
    }
    statements = plan_check.moved_statements(terraform.AWS_ROOT, configuration)
    assert ("module.thumbnail", "module.pipeline.module.thumbnail") in statements
    assert (
        "aws_cloudwatch_event_rule.object_created",
        'module.pipeline.aws_cloudwatch_event_rule.uploads["created"]',
    ) in statements
    # the module's own (older) moves, under the module's address
    assert (
        "module.pipeline.aws_lambda_layer_version.pillow",
        "module.pipeline.aws_lambda_layer_version.pillow[0]",
    ) in statements


def test_plan_check_reports_what_is_not_a_move():
    def plan(resources, outputs):
        return {
            "resource_changes": [
                {"address": a, "mode": "managed", "change": {"after": v, "after_unknown": {}}}
                for a, v in resources.items()
            ],
            "output_changes": {k: {"after": v} for k, v in outputs.items()},
        }

    base = plan({"aws_a.x": {"n": 1}, "aws_b.y": {"n": 1}, "aws_c.z": {"n": 1}}, {"o": 1, "p": 2})
    new = plan(
        {"module.m.aws_a.x": {"n": 1}, "module.m.aws_b.y": {"n": 2}, "aws_d.w": {}},
        {"o": 1, "p": 3},
    )
    moves = [("aws_a.x", "module.m.aws_a.x"), ("aws_b.y", "module.m.aws_b.y")]
    difference = plan_check.compare(base, new, moves)
    assert difference.moved == {"aws_a.x": "module.m.aws_a.x", "aws_b.y": "module.m.aws_b.y"}
    assert difference.changed == {"module.m.aws_b.y": ["n"]}
    assert difference.destroyed == ["aws_c.z"]
    assert difference.created == ["aws_d.w"]
    assert difference.outputs == {"p": "value differs"}
    assert not difference.none


def test_plan_check_names_the_blocks_added_and_removed():
    def plan(indexes):
        blocks = [{"name": n, "projection_type": p} for n, p in indexes.items()]
        return {
            "resource_changes": [
                {
                    "address": "aws_dynamodb_table.t",
                    "mode": "managed",
                    "change": {"after": {"global_secondary_index": blocks}, "after_unknown": {}},
                }
            ],
            "output_changes": {},
        }

    base = plan({"pending": "ALL", "owner": "ALL", "kept": "ALL"})
    new = plan({"waiting": "KEYS_ONLY", "owner": "KEYS_ONLY", "kept": "ALL"})
    difference = plan_check.compare(base, new, [])
    assert difference.details == {
        "aws_dynamodb_table.t": {"global_secondary_index": "+ waiting; - pending; ~ owner"}
    }
    assert (
        "      global_secondary_index: + waiting; - pending; ~ owner"
        in plan_check.report(difference, "a", "b").splitlines()
    )


def test_plan_check_reports_the_data_sources_a_policy_is_built_from():
    def plan(deferred, read):
        return {
            "prior_state": {
                "values": {
                    "root_module": {
                        "resources": [],
                        "child_modules": [
                            {
                                "resources": [
                                    {"address": a, "mode": "data", "values": v}
                                    for a, v in read.items()
                                ]
                            }
                        ],
                    }
                }
            },
            "resource_changes": [
                {"address": a, "mode": "data", "change": {"after": v, "after_unknown": {}}}
                for a, v in deferred.items()
            ],
            "output_changes": {},
        }

    base = plan({"data.d.tls": {"statement": ["tls"]}}, {"data.d.role": {"actions": ["s3:Get"]}})
    new = plan(
        {"data.d.tls": {"statement": ["tls"]}, "data.d.cdn_read": {"statement": ["cdn"]}},
        {"data.d.role": {"actions": ["s3:Get", "ssm:GetParameter"]}},
    )
    difference = plan_check.compare(base, new, [])
    assert difference.data_created == ["data.d.cdn_read"]
    assert difference.data_changed == {"data.d.role": ["actions"]}
    assert not difference.none
    text = plan_check.report(difference, "a", "b").splitlines()
    assert "  + data.d.cdn_read" in text
    assert "  ~ data.d.role: actions" in text
