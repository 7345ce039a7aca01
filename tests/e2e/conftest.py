"""The e2e tier: the whole stack, driven over HTTP like an app would, on either backend.

* The embedded stack (default; `make test`): Terraform applied to the local emulator, the
  functions run by the local Lambda runtime. The session starts the stack if none is running
  and stops it at the end; a stack that was already up (make up) is reused and left running.
* LocalStack (`make test-localstack`, E2E_BACKEND=localstack): the stack `make localstack-up`
  applied at LOCALSTACK_ENDPOINT (default http://localhost:4566), reached through
  localstack-client sessions. When no LocalStack stack answers, every test fails with one
  reason (skips, with LOCALSTACK_OPTIONAL set).

The tests use `pipeline`, `outputs` and `ca_bundle`, which work on both, and observe what an
operator of either could (the media item, S3 objects, queue attributes, notifications). Tests that
also need the embedded stack's control surface (`local_stack`, `faults`, `kill`, `journal`: fault
injection, killing a function's execution environments, write counts, the invocation journal, log
files) skip on LocalStack with that reason.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devstack import iam_report, localstack, stack
from devstack.pipeline import Pipeline

from tests.support import IAM_SNAPSHOTS

ON_LOCALSTACK = os.environ.get("E2E_BACKEND", "embedded") == "localstack"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """On LocalStack, a test marked ``embedded_only(reason)`` skips with its own reason."""
    marker = item.get_closest_marker("embedded_only")
    if ON_LOCALSTACK and marker is not None:
        pytest.skip(f"embedded stack only: {marker.args[0]}")


@pytest.fixture(scope="session")
def on_localstack() -> dict[str, Any]:
    """LocalStack's endpoint and the outputs of the stack applied to it."""
    url = localstack.endpoint()
    problem = localstack.unavailable(url)
    if problem is not None:
        # A run that tests nothing fails, unless it was asked to skip (LOCALSTACK_OPTIONAL).
        if localstack.optional():
            pytest.skip(problem)
        pytest.fail(f"{problem} (set {localstack.OPTIONAL}=1 to skip instead)", pytrace=False)
    return {"endpoint": url, "outputs": localstack.outputs()}


@pytest.fixture(scope="session")
def local_stack() -> Iterator[stack.Stack]:
    if ON_LOCALSTACK:
        pytest.skip(
            "needs the embedded stack's control surface (faults, write counts, invocation "
            "journal, log files), which LocalStack does not have"
        )
    port, state_dir = stack_place()
    was_running = stack.running(state_dir) is not None
    running = stack.up(port=port, state_dir=state_dir, watch_pid=os.getpid(), quiet=True)
    yield running
    snapshot = running.control("iam", timeout=120)
    snapshot["tests"] = dict(_TEST_STARTS)
    api = running.outputs()["functions"]["api"]
    snapshot["deployment"] = api.removesuffix("-api")  # the functions' common prefix
    IAM_SNAPSHOTS.append(snapshot)
    if not was_running:
        stack.down(state_dir)


# The IAM decision sequence number at which each test of this process began (iam_report).
_TEST_STARTS: dict[int, str] = {}


@pytest.fixture(autouse=True)
def no_call_denied(request: pytest.FixtureRequest) -> Iterator[None]:
    """On the embedded stack with IAM enforced, a test fails if any AWS call made while it
    ran (by a function, its event source mappings, or a presigned URL it handed out) was
    denied: named by function, action and resource. Calls the negative tests make on purpose
    (with the role session ``iam-probe``) are theirs to check. A call of work a test left behind
    that is denied after it ended is named by the next test, and by the session's summary."""
    if ON_LOCALSTACK:
        yield
        return
    running = request.getfixturevalue("local_stack")
    before = running.control("iam?calls=0")
    _TEST_STARTS[before["sequence"]] = request.node.nodeid
    yield
    if not before["enforced"]:
        return
    after = running.control(f"iam?calls=0&denials_since={before['sequence']}")
    denied = [d for d in after["denials"] if iam_report.PROBE not in (d["caller"], d["function"])]
    if denied:
        pytest.fail(
            f"IAM denied {len(denied)} call(s) while this test ran:\n"
            + "\n".join(
                f"  {d['function']}: {d['action']} on {d['resource']} ({d['reason']}; "
                f"caller {d['caller']})"
                for d in denied[:20]
            ),
            pytrace=False,
        )


def stack_place() -> tuple[int, Path]:
    """Where this session's embedded stack runs: the default port and state directory (a stack
    already up with `make up` is reused), or, for each further pytest-xdist worker (`make test`
    runs two), a stack of its own, so a test's faults and kills never reach another's images."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw") or 0)
    if index == 0:
        return stack.DEFAULT_PORT, stack.STATE_DIR
    return stack.DEFAULT_PORT + 10 * index, stack.STATE_DIR / "workers" / worker


@pytest.fixture(scope="session")
def outputs(request: pytest.FixtureRequest) -> dict[str, Any]:
    if ON_LOCALSTACK:
        return request.getfixturevalue("on_localstack")["outputs"]
    return request.getfixturevalue("local_stack").outputs()


@pytest.fixture(scope="session")
def ca_bundle(request: pytest.FixtureRequest) -> str | None:
    """The CA to trust for the backend's URLs: the embedded stack's own; None on LocalStack
    (plain HTTP)."""
    if ON_LOCALSTACK:
        return None
    return str(request.getfixturevalue("local_stack").ca_bundle)


@pytest.fixture(scope="session")
def pipeline(request: pytest.FixtureRequest, outputs: dict[str, Any]) -> Pipeline:
    if ON_LOCALSTACK:
        url = request.getfixturevalue("on_localstack")["endpoint"]
        return Pipeline.for_localstack(outputs, localstack.session(url), url)
    local_stack = request.getfixturevalue("local_stack")
    return Pipeline.for_local_stack(outputs, local_stack.endpoint, local_stack.ca_bundle)


@pytest.fixture
def faults(local_stack: stack.Stack) -> Iterator[Callable[..., str]]:
    """Add faults to the emulator for one test; they are all removed afterwards."""

    def add(**spec: Any) -> str:
        return local_stack.control("faults", method="POST", body=spec)["id"]

    yield add
    local_stack.control("faults", method="DELETE")


@pytest.fixture
def kill(local_stack: stack.Stack) -> Callable[..., int]:
    """``kill(function_name)``: SIGKILL the function's execution environments that are busy with
    an invocation (``idle=True``: the idle ones too), as Lambda does on a crash or out-of-memory;
    returns how many were killed. Their invocations end with ``Runtime.ExitError``."""

    def kill_(function: str, *, idle: bool = False) -> int:
        body = {"function": function, "all": idle}
        return local_stack.control("kill", method="POST", body=body)["killed"]

    return kill_


@pytest.fixture
def journal(local_stack: stack.Stack) -> Callable[[], list[dict[str, Any]]]:
    """The local runtime's record of every invocation so far."""
    path = Path(local_stack.state_dir) / "logs" / "invocations.jsonl"
    return lambda: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(
    predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.25
) -> Any:
    """A bounded poll: the predicate's first truthy value, or a failure naming what never came."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:.0f} s: {message}")
        time.sleep(interval)
