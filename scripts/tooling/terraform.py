"""Running the project's Terraform from scripts, on this machine or a normal one.

One root applies the pipeline module (terraform/modules/pipeline): ``terraform/envs/aws``
(production: ``make plan`` / ``make deploy``). The emulators' root (the embedded stack,
LocalStack) is that same root plus the files of ``terraform/envs/local``: a variables file and
Terraform override files (``*_override.tf``, merged into the root's provider and module call),
put together in a working directory by :func:`emulator_root`. To plan the production root
against an emulator (``make plan-check``, the e2e deployment tests), :func:`staged_root` adds
the provider override alone, with the emulator's endpoint.

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
ENVS_DIR = TERRAFORM_DIR / "envs"
AWS_ROOT = ENVS_DIR / "aws"
# What the emulators' root adds to the production root (terraform/envs/local/emulator.tf).
LOCAL_ROOT = ENVS_DIR / "local"
# Of those, what points the production root at an emulator and nothing else.
PROVIDER_OVERLAY = ("emulator.tf", "provider_override.tf")
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
    chdir: Path,
) -> str:
    """Run terraform in the root module ``chdir``. Its output is returned (capture), written to a
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


def init(env: dict[str, str], root: Path) -> None:
    run(["init", "-input=false", "-no-color", "-upgrade=false"], env, capture=True, chdir=root)


def variable_args(variables: dict[str, str], var_files: list[Path]) -> list[str]:
    """``-var-file`` and ``-var`` arguments of a plan or apply (files first: ``-var`` wins)."""
    return [f"-var-file={f}" for f in var_files] + [f"-var={k}={v}" for k, v in variables.items()]


def apply(
    env: dict[str, str],
    root: Path,
    *,
    state: Path,
    variables: dict[str, str],
    var_files: list[Path],
    log: Path,
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
    run(args + variable_args(variables, var_files), env, log=log, chdir=root)


def output_json(env: dict[str, str], root: Path, state: Path) -> str:
    """``terraform output -json``, verbatim."""
    return run(["output", "-json", f"-state={state}"], env, capture=True, chdir=root)


def output_values(raw: str) -> dict[str, Any]:
    """The values of ``terraform output -json``, by output name."""
    return {name: output["value"] for name, output in json.loads(raw).items()}


def staged_root(
    root: Path,
    workdir: Path,
    *,
    endpoint: str | None = None,
    overlay: tuple[Path, ...] = (),
) -> Path:
    """A working copy of the root module ``root`` (``terraform/envs/<name>``) under ``workdir``:
    links to its files and to the ``overlay`` files, beside a link to its ``terraform/modules``,
    so that its module sources (``../../modules/...``) resolve, and its own copy of the lock
    file. With ``endpoint``, the emulator's provider override (``PROVIDER_OVERLAY``) points it
    at that emulator. Returns the copy's root directory."""
    modules = root.resolve().parents[1] / "modules"
    stage = workdir / "terraform"
    copy = stage / "envs" / root.name
    copy.mkdir(parents=True, exist_ok=True)
    link = stage / "modules"
    if not link.is_symlink():
        link.symlink_to(modules)
    if endpoint is not None:
        overlay = (*overlay, *(LOCAL_ROOT / name for name in PROVIDER_OVERLAY))
        (copy / "emulator.auto.tfvars").write_text(f"aws_endpoint_url = {json.dumps(endpoint)}\n")
    for stale in copy.glob("*.tf"):
        stale.unlink()  # links of an earlier staging: a file removed since must not stay
    for source in sorted(root.iterdir()) + sorted(overlay):
        target = copy / source.name
        if source.name == ".terraform.lock.hcl":
            shutil.copyfile(source, target)  # init may add hashes: never to the repository's
        elif source.suffix == ".tf":
            target.symlink_to(source.resolve())
    return copy


def emulator_root(local: Path, workdir: Path) -> Path:
    """The emulators' root of a project tree, given its ``terraform/envs/local``: the production
    root beside it plus the files of ``local``, staged under ``workdir``. (A tree from before
    that layout has a whole root in ``local``: it is used as it is.)"""
    if (local / "main.tf").is_file():
        return local
    return staged_root(local.parent / "aws", workdir, overlay=tuple(sorted(local.glob("*.tf"))))


def emulator_files(local: Path) -> list[Path]:
    """The ``.tf`` files of the emulators' root of a tree (see :func:`emulator_root`)."""
    if (local / "main.tf").is_file():
        return sorted(local.glob("*.tf"))
    return sorted((local.parent / "aws").glob("*.tf")) + sorted(local.glob("*.tf"))


def plan(
    env: dict[str, str],
    root: Path,
    workdir: Path,
    variables: dict[str, str],
    var_files: list[Path],
) -> dict[str, Any]:
    """``terraform init`` and ``plan`` of ``root`` from an empty state, as ``terraform show
    -json`` gives it. Nothing is applied; the data dir, the plan and its empty state stay in
    workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**env, "TF_DATA_DIR": str(workdir / ".terraform")}
    init(env, root)
    out = workdir / "plan.tfplan"
    args = ["plan", "-input=false", "-no-color", "-lock=false", f"-out={out}"]
    args += [f"-state={workdir / 'empty.tfstate'}", *variable_args(variables, var_files)]
    run(args, env, log=workdir / "plan.log", chdir=root)
    return json.loads(run(["show", "-json", str(out)], env, capture=True, chdir=root))


def planned_resources(
    env: dict[str, str],
    root: Path,
    workdir: Path,
    variables: dict[str, str],
    var_files: list[Path],
) -> dict[str, dict[str, Any]]:
    """Every managed resource a plan of ``root`` from an empty state would create, by address
    (with its planned values)."""
    shown = plan(env, root, workdir, variables, var_files)
    return {
        address: change.get("after") or {} for address, change in managed_changes(shown).items()
    }


def managed_changes(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The planned change of every managed resource in ``terraform show -json`` of a plan, by
    address."""
    return {
        change["address"]: change["change"]
        for change in shown.get("resource_changes", [])
        if change["mode"] == "managed"
    }


def data_reads(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every data source of ``terraform show -json`` of a plan, by address, as a change: those
    read during the plan (their values in ``prior_state``) and those deferred to the apply
    (their inputs not yet known: ``resource_changes`` with the action ``read``)."""
    found: dict[str, dict[str, Any]] = {}

    def visit(module: dict[str, Any]) -> None:
        for resource in module.get("resources", []):
            if resource.get("mode") == "data":
                found[resource["address"]] = {
                    "after": resource.get("values") or {},
                    "after_unknown": {},
                    "after_sensitive": resource.get("sensitive_values") or {},
                }
        for child in module.get("child_modules", []):
            visit(child)

    visit(((shown.get("prior_state") or {}).get("values") or {}).get("root_module") or {})
    for change in shown.get("resource_changes", []):
        if change["mode"] == "data":
            found[change["address"]] = change["change"]
    return found


def deployed_ids(state: Path, resource_type: str) -> set[str]:
    """The ids of every ``resource_type`` instance recorded in a Terraform state file."""
    resources = json.loads(state.read_text()).get("resources", [])
    return {
        instance["attributes"]["id"]
        for resource in resources
        if resource.get("mode") == "managed" and resource.get("type") == resource_type
        for instance in resource.get("instances", [])
    }
