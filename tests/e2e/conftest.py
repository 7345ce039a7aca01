"""The e2e tier: the whole stack from `make up` (Terraform applied to the local emulator, the
functions run by the local Lambda runtime), driven over HTTP like an app would.

The session starts the stack if none is running and stops it at the end; a stack that was
already up (make up) is reused and left running.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devstack import stack
from devstack.pipeline import Pipeline

LATENCIES: dict[str, list[float]] = {}  # upload -> notification, by kind of load


@pytest.fixture(scope="session")
def local_stack() -> Iterator[stack.Stack]:
    was_running = stack.running() is not None
    running = stack.up(watch_pid=os.getpid(), quiet=True)
    yield running
    if not was_running:
        stack.down()


@pytest.fixture(scope="session")
def outputs(local_stack: stack.Stack) -> dict[str, Any]:
    return local_stack.outputs()


@pytest.fixture(scope="session")
def pipeline(local_stack: stack.Stack, outputs: dict[str, Any]) -> Pipeline:
    return Pipeline.for_local_stack(outputs, local_stack.endpoint, local_stack.ca_bundle)


@pytest.fixture
def faults(local_stack: stack.Stack) -> Iterator[Callable[..., str]]:
    """Add faults to the emulator for one test; they are all removed afterwards."""

    def add(**spec: Any) -> str:
        return local_stack.control("faults", method="POST", body=spec)["id"]

    yield add
    local_stack.control("faults", method="DELETE")


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


def record_latency(seconds: float, load: str = "one upload at a time") -> None:
    LATENCIES.setdefault(load, []).append(seconds)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for load, values in LATENCIES.items():
        ordered = sorted(values)
        p50 = ordered[len(ordered) // 2]
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        terminalreporter.write_line(
            f"upload -> notification, {load} ({len(ordered)} uploads): "
            f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"
        )
