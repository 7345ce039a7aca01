"""``make localstack-up`` / ``make localstack-down`` / ``make test-localstack``: the same
Terraform on LocalStack under Docker Compose (docker-compose.yml), beside the embedded stack.

``up`` starts the compose service and waits for its health check (or uses the LocalStack that
already answers at ``LOCALSTACK_ENDPOINT``), applies the Terraform with ``aws_endpoint_url``
pointed at LocalStack (its own state in ``.local/localstack/``; packages built for python3.13 on
the Docker host's architecture, which LocalStack's Lambda containers use, with the layers bundled
into each function: the community edition does not apply layers) and writes ``terraform output
-json`` to ``.local/localstack/outputs.json``, ``api_url`` at LocalStack's
``/_aws/execute-api/<id>/<stage>``. ``down`` stops the service, removes its volume and forgets the
state, the state even when compose is not available. The e2e tier reads the outputs and talks to
LocalStack through ``localstack-client`` sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from localstack_client.session import Session
from tooling import terraform

from devstack import stack

ROOT = terraform.ROOT
STATE_DIR = ROOT / ".local" / "localstack"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEFAULT_ENDPOINT = "http://localhost:4566"
REGION = stack.REGION
# LocalStack's Lambda containers are AWS's base images: the newest runtime this project supports.
RUNTIME = "python3.13"


class LocalStackError(RuntimeError):
    pass


def endpoint() -> str:
    return os.environ.get("LOCALSTACK_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def health(url: str | None = None, timeout: float = 2) -> dict[str, Any] | None:
    """LocalStack's health document, or None when nothing (or something else) answers there."""
    health_url = f"{url or endpoint()}/_localstack/health"
    if urlparse(health_url).scheme not in ("http", "https"):
        return None
    try:
        with urllib.request.urlopen(health_url, timeout=timeout) as r:  # noqa: S310 - http(s) only
            document = json.loads(r.read())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and "services" in document else None


def not_answering(url: str | None = None) -> str:
    where = f"{url or endpoint()}/_localstack/health"
    return f"no LocalStack answers at {where} (make localstack-up starts one)"


OPTIONAL = "LOCALSTACK_OPTIONAL"
"""Set (to anything but empty): the LocalStack e2e run is skipped, in one line, when no
LocalStack stack answers. Unset: that run fails, since it would test nothing."""


def optional() -> bool:
    return bool(os.environ.get(OPTIONAL, "").strip())


def unavailable(url: str | None = None) -> str | None:
    """Why the e2e tier cannot run on LocalStack (nothing answers, or nothing is applied to
    what answers), or None when it can."""
    url = url or endpoint()
    if health(url) is None:
        return not_answering(url)
    if outputs() is None:
        return f"LocalStack answers at {url} but nothing is applied: make localstack-up"
    return None


def outputs_file() -> Path:
    return STATE_DIR / "outputs.json"


def outputs() -> dict[str, Any] | None:
    """The applied stack's Terraform outputs, or None if `make localstack-up` has not run."""
    try:
        return stack.read_outputs(STATE_DIR)
    except (OSError, ValueError):
        return None


def session(url: str | None = None) -> Any:
    """A boto3-compatible session whose clients all talk to LocalStack."""
    return Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - LocalStack's fixed credentials
        aws_session_token=None,
        region_name=REGION,
        localstack_host=urlparse(url or endpoint()).netloc,
    )


# What Terraform changes on LocalStack: the community edition does not apply Lambda layers, so
# each function is deployed with its layers inside its zip (make bundle).
# Community LocalStack has no CloudFront: its stacks hand out S3 presigned GETs (docs/local.md).
VARIABLES = {"bundle_layers": "true", "cdn": '{"enabled": false}'}


class ComposeUnavailable(LocalStackError):
    """No docker CLI, or no compose plugin for it."""


def _compose(*args: str) -> None:
    docker = shutil.which("docker")
    if docker is None:
        raise ComposeUnavailable("docker is not installed: use `make up` (the embedded stack)")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        raise ComposeUnavailable("`docker compose` is not available (no compose plugin)")
    command = [docker, "compose", "-f", str(COMPOSE_FILE), *args]
    if subprocess.run(command, check=False).returncode != 0:
        raise LocalStackError(f"`{' '.join(command[1:])}` failed (is the Docker engine running?)")


def up() -> dict[str, Any]:
    url = endpoint()
    if health(url) is None:
        _compose("up", "--detach", "--wait")
    if health(url, timeout=10) is None:
        raise LocalStackError(not_answering(url))
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    # LocalStack serves the REST API at <endpoint>/_aws/execute-api/<id>/<stage>, not at the AWS
    # invoke URL Terraform reports: the outputs say so.
    stack.apply_local_config(url, STATE_DIR, runtime=RUNTIME, variables=VARIABLES)
    return stack.read_outputs(STATE_DIR)


def down() -> str | None:
    """Stop the compose service and remove its volume, then forget the Terraform state, whatever
    compose did. Returns why compose could not run, or None."""
    try:
        _compose("down", "--volumes")
        problem = None
    except ComposeUnavailable as error:
        problem = str(error)
    finally:
        for stale in ("terraform.tfstate", "terraform.tfstate.backup", "outputs.json"):
            (STATE_DIR / stale).unlink(missing_ok=True)
    return problem
