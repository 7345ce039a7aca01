"""``make up`` / ``make down``: the embedded local stack, with no Docker.

``up`` starts one background process serving the AWS APIs (moto) and running the deployed
functions (the local Lambda runtime), applies the project's Terraform to it (the pipeline module
through the emulator root, ``terraform/envs/local``), writes
``terraform output -json`` to ``.local/outputs.json`` and waits until every function and event
source mapping is live. Running it again re-applies Terraform to the running stack (harmless,
and how code changes are deployed). ``down`` stops the process; the emulator keeps its state in
memory, so the Terraform state of the local stack goes with it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooling import cdn_keys, terraform
from tooling.pythons import HOST_ARCH, host_runtime

from devstack.processes import alive

ROOT = terraform.ROOT
STATE_DIR = terraform.STATE_DIR
DEFAULT_PORT = int(os.environ.get("DEVSTACK_PORT", "4599"))
# IAM on the embedded stack (devstack/iam.py): "enforce" (each function as its role, every call
# authorised; the default) or "off" (everything as the administrator). DEVSTACK_IAM=off make up.
IAM_MODES = ("enforce", "off")
REGION = "us-east-1"
LOCAL_TFVARS = terraform.ENVS_DIR / "local.tfvars"


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Source:
    """What a stack deploys: the emulator root (the tree's ``terraform/envs/local``, staged
    with its production root: ``terraform.emulator_root``) and its variables, and the packages
    built for it. This checkout's by default; ``make capacity REF=...`` deploys another git
    ref's (a worktree of it, with its own build/) on a stack run by this checkout's devstack."""

    terraform_root: Path = terraform.LOCAL_ROOT
    tfvars: Path = LOCAL_TFVARS
    build_dir: Path = ROOT / "build"

    @classmethod
    def tree(cls, root: Path) -> Source:
        """The emulator root, local.tfvars and build/ of the project tree at ``root``."""
        envs = root / "terraform" / "envs"
        return cls(envs / "local", envs / "local.tfvars", root / "build")


THIS_CHECKOUT = Source()


def ca_file(state_dir: Path = STATE_DIR) -> Path:
    """The CA that signs the stack's certificate (for AWS_CA_BUNDLE / verify=)."""
    return state_dir / "tls" / "ca.pem"


def read_outputs(state_dir: Path = STATE_DIR) -> dict[str, Any]:
    """The values of the stack's ``outputs.json`` (``terraform output -json``), by name."""
    return terraform.output_values((state_dir / "outputs.json").read_text())


def web_port(port: int) -> int:
    """Where ``make web`` serves the browser demo for a stack on ``port``."""
    return port + 1


@dataclass(frozen=True)
class Stack:
    """A running embedded stack, as recorded in ``.local/devstack.json``."""

    endpoint: str
    pid: int
    state_dir: Path

    @property
    def ca_bundle(self) -> Path:
        return ca_file(self.state_dir)

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    @property
    def http_endpoint(self) -> str:
        """The same APIs over plain HTTP, where TLS-only policies refuse requests."""
        return f"http://127.0.0.1:{self.port - 1}"

    @property
    def outputs_file(self) -> Path:
        return self.state_dir / "outputs.json"

    def outputs(self) -> dict[str, Any]:
        return read_outputs(self.state_dir)

    def control(
        self, route: str, method: str = "GET", body: Any = None, timeout: float = 30
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our own https endpoint
            f"{self.endpoint}/_devstack/{route}", data=data, method=method
        )
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's emulator, with its credentials and CA."""
        import boto3  # noqa: PLC0415 - only where a client is made

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - the emulator's fixed credentials
            verify=str(self.ca_bundle),
        )

    def healthy(self) -> bool:
        try:
            return self.control("health", timeout=2).get("pid") == self.pid
        except (OSError, urllib.error.URLError, ValueError, ssl.SSLError):
            return False


def _record_file(state_dir: Path) -> Path:
    return state_dir / "devstack.json"


def running(state_dir: Path = STATE_DIR) -> Stack | None:
    """The stack recorded in the state directory, if it is up and answering."""
    try:
        record = json.loads(_record_file(state_dir).read_text())
    except (OSError, ValueError):
        return None
    stack = Stack(endpoint=record["endpoint"], pid=record["pid"], state_dir=state_dir)
    return stack if stack.healthy() else None


def _start_server(
    state_dir: Path,
    port: int,
    watch_pid: int | None,
    code_dir: Path = ROOT / "build",
    iam: str | None = None,
) -> Stack:
    state_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "devstack.server",
        "--port",
        str(port),
        "--http-port",
        str(port - 1),
        "--region",
        REGION,
        "--state-dir",
        str(state_dir),
        "--code-dir",
        str(code_dir),
        "--runtime-requirements",
        str(ROOT / "requirements" / "lambda-runtime.txt"),
    ]
    if watch_pid:
        command += ["--watch-pid", str(watch_pid)]
    command += ["--iam", iam or iam_mode()]
    log = (state_dir / "devstack.log").open("ab")
    process = subprocess.Popen(
        command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT
    )
    stack = Stack(endpoint=f"https://127.0.0.1:{port}", pid=process.pid, state_dir=state_dir)
    deadline = time.monotonic() + 60
    while not stack.healthy():
        if process.poll() is not None:
            tail = (
                (state_dir / "devstack.log").read_text(errors="replace").strip().splitlines()[-3:]
            )
            raise StackError(
                f"the stack process exited ({process.returncode}): {' / '.join(tail)} "
                f"(full log: {state_dir / 'devstack.log'})"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise StackError(f"the stack did not answer on {stack.endpoint} within 60 s")
        time.sleep(0.2)
    _record_file(state_dir).write_text(json.dumps({"endpoint": stack.endpoint, "pid": stack.pid}))
    return stack


def iam_mode() -> str:
    """How a new stack treats IAM: DEVSTACK_IAM, "enforce" unless told "off"."""
    mode = os.environ.get("DEVSTACK_IAM", "enforce")
    if mode not in IAM_MODES:
        raise StackError(f"DEVSTACK_IAM={mode!r}: expected one of {', '.join(IAM_MODES)}")
    return mode


def up(
    *,
    port: int = DEFAULT_PORT,
    state_dir: Path = STATE_DIR,
    watch_pid: int | None = None,
    quiet: bool = False,
    source: Source = THIS_CHECKOUT,
    variables: dict[str, str] | None = None,
    iam: str | None = None,
) -> Stack:
    """Start (or reuse) the stack, apply Terraform to it, and wait until it is live.

    ``source``: the Terraform and packages to deploy (this checkout's unless told);
    ``variables``: values (HCL) that override its local tfvars, each only if the source's
    emulator root declares it (an older tree may not); ``iam``: "enforce" or "off" for a stack
    started here (DEVSTACK_IAM, enforce, unless told)."""
    say = (lambda *_: None) if quiet else (lambda msg: print(f"==> {msg}", flush=True))
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    tfstate = state_dir / "terraform.tfstate"
    stack = running(state_dir)
    if stack is None:
        say(f"starting the emulator and local Lambda runtime on 127.0.0.1:{port}")
        for stale in (tfstate, tfstate.with_suffix(".tfstate.backup")):
            stale.unlink(missing_ok=True)  # it described an emulator that is gone
        stack = _start_server(state_dir, port, watch_pid, source.build_dir, iam)
    else:
        say(f"reusing the stack already running on {stack.endpoint} (pid {stack.pid})")

    say(f"terraform init and apply (the pipeline module of AWS, through {_shown(source)})")
    started = time.monotonic()
    apply_local_config(
        stack.endpoint,
        state_dir,
        runtime=host_runtime(),
        ca_bundle=stack.ca_bundle,
        # the browser demo (make web) uploads from its own origin
        variables={
            "cors_allowed_origins": json.dumps(web_origins(port)),
            **cdn_variables(stack, source),
            **{k: v for k, v in (variables or {}).items() if _declares(source, k)},
        },
        source=source,
    )
    say(f"applied in {time.monotonic() - started:.0f} s (log: {state_dir / 'terraform-apply.log'})")
    wait_until_live(stack)
    return stack


CDN_KEY_ID = "local"


def cdn_variables(stack: Stack, source: Source) -> dict[str, str]:
    """The CDN of a local stack: URLs signed with a key pair of its own (made once, kept in
    ``<state>/cdn/``; its private half put in the emulator's SSM, as scripts/cdn_keys.py does on
    AWS) and served by the stack's edge (``<endpoint>/_edge``, devstack/edge.py). Nothing for a
    tree whose Terraform has no CDN (an older ref measured by ``make capacity``)."""
    if not _declares(source, "cdn_edge_url"):
        return {}
    keys = stack.state_dir / "cdn"
    private = keys / f"{CDN_KEY_ID}.pem"
    if not private.is_file():
        keys.mkdir(parents=True, exist_ok=True)
        private_pem, _ = cdn_keys.generate()
        private.write_bytes(private_pem)
        private.chmod(0o600)
    private_pem = private.read_bytes()
    name = _variable_value(source, "name") or "media-pipeline"
    cdn_keys.store(
        stack.client("ssm"), cdn_keys.parameter_name(name, CDN_KEY_ID), private_pem, overwrite=True
    )
    cdn = {
        "public_keys": {CDN_KEY_ID: cdn_keys.public_of(private_pem).decode()},
        "signing_key": CDN_KEY_ID,
    }
    return {"cdn": json.dumps(cdn), "cdn_edge_url": f"{stack.endpoint}/_edge"}


def _declares(source: Source, variable: str) -> bool:
    """Whether the source's emulator root declares this variable."""
    pattern = re.compile(rf'^variable "{re.escape(variable)}"', re.M)
    files = terraform.emulator_files(source.terraform_root)
    return any(pattern.search(f.read_text()) for f in files)


def _variable_value(source: Source, variable: str) -> str | None:
    """A string variable's value in the source's local tfvars (None if it sets none)."""
    match = re.search(rf'^{re.escape(variable)}\s*=\s*"([^"]*)"', source.tfvars.read_text(), re.M)
    return match.group(1) if match else None


def _shown(source: Source) -> str:
    try:
        return str(source.terraform_root.relative_to(ROOT))
    except ValueError:
        return str(source.terraform_root)


def target_variables(
    endpoint: str, runtime: str, build_dir: Path = ROOT / "build"
) -> dict[str, str]:
    """The Terraform variables that point the configuration at an emulator's ``endpoint``, with
    the packages ``make build`` made for this host (``runtime``) in ``build_dir``."""
    return {
        "aws_endpoint_url": endpoint,
        "lambda_runtime": runtime,
        "lambda_architecture": HOST_ARCH,
        "build_dir": str(build_dir),
    }


def apply_local_config(
    endpoint: str,
    state_dir: Path,
    *,
    runtime: str,
    ca_bundle: Path | None = None,
    variables: dict[str, str] | None = None,
    source: Source = THIS_CHECKOUT,
) -> None:
    """``terraform init`` + ``apply`` of the emulator root (``terraform/envs/local`` with
    ``envs/local.tfvars``, or those of ``source``) to the emulator at ``endpoint``, state in
    ``state_dir``; writes its outputs to ``state_dir/outputs.json`` with ``api_url`` where that
    emulator serves the API."""
    credentials = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
    }
    if ca_bundle is not None:
        credentials["AWS_CA_BUNDLE"] = str(ca_bundle)
    env = terraform.environment(state_dir, credentials)
    root = terraform.emulator_root(source.terraform_root, state_dir / "emulator-root")
    terraform.init(env, root)
    tfstate = state_dir / "terraform.tfstate"
    # Rarely (2 starts in about 30, on a busy machine), the provider missed the answer to a
    # CreateFunction that the emulator carried out, and its SDK's retry got "Function already
    # exist" for 5 minutes: the server now gives a retry the answer its first attempt got
    # (devstack/retries.py; each such replay is a warning in devstack.log). The provider's
    # debug log (every request, answer and retry; ~40 MB) is written for every apply and kept
    # only when the apply fails.
    debug_log = state_dir / "terraform-debug.log"
    debug_log.unlink(missing_ok=True)  # Terraform appends
    logged = env if "TF_LOG" in env else {**env, "TF_LOG": "DEBUG", "TF_LOG_PATH": str(debug_log)}
    try:
        terraform.apply(
            logged,
            root,
            state=tfstate,
            variables={
                **target_variables(endpoint, runtime, source.build_dir),
                "region": REGION,
                **(variables or {}),
            },
            var_files=[source.tfvars],
            log=state_dir / "terraform-apply.log",
        )
    except terraform.TerraformError as error:
        if debug_log.is_file():
            raise terraform.TerraformError(f"{error}\n(debug log: {debug_log})") from error
        raise
    debug_log.unlink(missing_ok=True)
    raw = terraform.output_json(env, root, tfstate)
    outputs = served_locally(json.loads(raw), endpoint)
    (state_dir / "outputs.json").write_text(json.dumps(outputs, indent=2))


def web_origins(port: int) -> list[str]:
    """Where ``make web`` serves the browser demo for a stack on ``port`` (its CORS origins)."""
    web = web_port(port)
    return [f"http://127.0.0.1:{web}", f"http://localhost:{web}"]


_INVOKE_URL = re.compile(r"^https://([^./]+)\.execute-api\.[^/]+/([^/]+)/?$")


def served_locally(outputs: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """``terraform output -json`` with ``api_url`` pointing where this stack serves the API.

    Terraform reports the stage's AWS invoke URL (``https://<id>.execute-api.<region>...``);
    the local API Gateway answers the same API at ``<endpoint>/_aws/execute-api/<id>/<stage>``
    (LocalStack's URL shape, which the embedded stack serves too).
    """
    api_url = outputs.get("api_url", {}).get("value", "")
    match = _INVOKE_URL.match(api_url)
    if match:
        local = f"{endpoint}/_aws/execute-api/{match.group(1)}/{match.group(2)}"
        outputs = {**outputs, "api_url": {**outputs["api_url"], "value": local}}
    return outputs


def wait_until_live(stack: Stack, timeout: float = 60) -> None:
    """Until the runtime runs every deployed function and polls every event source mapping
    the Terraform state records."""
    outputs = stack.outputs()
    functions = set(outputs["functions"].values())
    mappings = terraform.deployed_ids(
        stack.state_dir / "terraform.tfstate", "aws_lambda_event_source_mapping"
    )
    needs_routes = "api_url" in outputs
    deadline = time.monotonic() + timeout
    while True:
        status = stack.control("refresh", method="POST")
        missing = (functions - set(status["functions"])) | (mappings - set(status["mappings"]))
        idle = [m for m in status["mappings"].values() if not m["running"]]
        routes = bool(status.get("rest_apis")) or not needs_routes
        if not missing and not idle and routes:
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"runtime not live after {timeout:.0f} s: missing={missing} status={status}"
            )
        time.sleep(0.5)


def down(state_dir: Path = STATE_DIR) -> bool:
    """Stop the stack recorded in the state directory. False if none was running."""
    state_dir = state_dir.resolve()
    stack = running(state_dir)
    record = _record_file(state_dir)
    if stack is None:
        record.unlink(missing_ok=True)
        return False
    try:
        stack.control("shutdown", method="POST", timeout=5)
    except OSError:
        os.kill(stack.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while alive(stack.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(stack.pid):
        os.killpg(stack.pid, signal.SIGKILL)
    record.unlink(missing_ok=True)
    for stale in (state_dir / "terraform.tfstate", state_dir / "terraform.tfstate.backup"):
        stale.unlink(missing_ok=True)
    return True
