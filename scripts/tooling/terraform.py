"""Running the project's Terraform from scripts, on this machine or a normal one.

Where the public registry is unreachable, the hashicorp/aws provider comes from a local
filesystem mirror: ``TF_PLUGIN_MIRROR`` names it, or the first of a few usual places that holds
``registry.terraform.io/hashicorp/aws`` is used, through a CLI config written to the state
directory. On a normal machine no mirror is found and ``terraform init`` uses the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
# Where the tooling keeps its state (Terraform data dirs, the CLI config): .local/, the local
# stack's state directory too (DEVSTACK_STATE_DIR moves both).
STATE_DIR = Path(os.environ.get("DEVSTACK_STATE_DIR", ROOT / ".local"))
MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)


class TerraformError(RuntimeError):
    pass


def find_plugin_mirror() -> Path | None:
    configured = os.environ.get("TF_PLUGIN_MIRROR")
    candidates = [configured] if configured else list(MIRROR_CANDIDATES)
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if (path / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return path
    if configured:
        raise TerraformError(
            f"TF_PLUGIN_MIRROR={configured} holds no registry.terraform.io/hashicorp/aws"
        )
    return None


def environment(state_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for terraform: data dir under the state dir, mirror config if needed."""
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", **(extra or {})}
    env["TF_DATA_DIR"] = str(state_dir / "terraform")
    mirror = find_plugin_mirror()
    if mirror is not None:
        config = state_dir / "terraformrc"
        config.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
            '    include = ["registry.terraform.io/hashicorp/*"]\n  }\n'
            '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n'
        )
        env["TF_CLI_CONFIG_FILE"] = str(config)
    elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
        del env["TF_CLI_CONFIG_FILE"]  # a dangling setting only produces warnings
    return env


def run(
    args: list[str],
    env: dict[str, str],
    *,
    capture: bool = False,
    log: Path | None = None,
    chdir: Path = TERRAFORM_DIR,
) -> str:
    """Run terraform in terraform/ (or chdir). Its output is returned (capture), written to a
    log, or shown."""
    terraform = shutil.which("terraform")
    if terraform is None:
        raise TerraformError(
            "terraform is not installed (https://developer.hashicorp.com/terraform/install)"
        )
    if log is not None:
        with log.open("w") as stream:
            process = subprocess.run(
                [terraform, f"-chdir={chdir}", *args],
                env=env,
                stdout=stream,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if process.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise TerraformError(
                f"terraform {args[0]} failed (exit {process.returncode}); end of {log}:\n{tail}"
            )
        return ""
    process = subprocess.run(
        [terraform, f"-chdir={chdir}", *args],
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )
    if process.returncode != 0:
        detail = (process.stderr or "")[-4000:] if capture else ""
        raise TerraformError(f"terraform {args[0]} failed (exit {process.returncode}) {detail}")
    return process.stdout or ""


def init(env: dict[str, str]) -> None:
    run(["init", "-input=false", "-no-color", "-upgrade=false"], env, capture=True)


def apply(
    env: dict[str, str], state: Path, variables: dict[str, str], var_files: list[Path], log: Path
) -> None:
    # Every SQS queue holds a slot for ~25 s while the provider waits for its attributes to
    # propagate: enough parallelism lets all of them wait at once.
    args = [
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-parallelism=30",
        f"-state={state}",
    ]
    args += [f"-var-file={f}" for f in var_files]
    args += [f"-var={name}={value}" for name, value in variables.items()]
    run(args, env, log=log)


def output_json(env: dict[str, str], state: Path) -> str:
    """``terraform output -json``, verbatim."""
    return run(["output", "-json", f"-state={state}"], env, capture=True)


def output_values(raw: str) -> dict[str, Any]:
    """The values of ``terraform output -json``, by output name."""
    return {name: output["value"] for name, output in json.loads(raw).items()}


def planned_resources(
    env: dict[str, str], workdir: Path, variables: dict[str, str], var_files: list[Path]
) -> dict[str, dict[str, Any]]:
    """``terraform plan`` from an empty state: every managed resource it would create, by address
    (with its planned values). Nothing is applied; the plan and its empty state stay in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan = workdir / "plan.tfplan"
    args = ["plan", "-input=false", "-no-color", "-lock=false", f"-out={plan}"]
    args += [f"-state={workdir / 'empty.tfstate'}"]
    args += [f"-var-file={f}" for f in var_files]
    args += [f"-var={name}={value}" for name, value in variables.items()]
    run(args, env, log=workdir / "plan.log")
    shown = json.loads(run(["show", "-json", str(plan)], env, capture=True))
    return {
        change["address"]: change["change"].get("after") or {}
        for change in shown.get("resource_changes", [])
        if change["mode"] == "managed"
    }


def deployed_ids(state: Path, resource_type: str) -> set[str]:
    """The ids of every ``resource_type`` instance recorded in a Terraform state file."""
    resources = json.loads(state.read_text()).get("resources", [])
    return {
        instance["attributes"]["id"]
        for resource in resources
        if resource.get("mode") == "managed" and resource.get("type") == resource_type
        for instance in resource.get("instances", [])
    }
