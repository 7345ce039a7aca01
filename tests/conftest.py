"""Fixtures shared by every tier."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devstack import iam_report
from devstack.stack import STATE_DIR

from tests.support import CORPUS, CORPUS_MISSING, IAM_SNAPSHOTS, LATENCIES


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared image corpus (../shared/corpus beside the checkout, as in CI)."""
    if not (CORPUS / "manifest.csv").is_file():
        pytest.skip(CORPUS_MISSING)
    return CORPUS


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = ""
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(aws_request_id=str(uuid.uuid4()))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first. make test has pytest-xdist hand out tests one at a time, two to each
    worker to begin with, so the few that wait minutes start at once on different workers
    instead of queueing on one."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A test marked ``must_run`` that was skipped (by itself or by a fixture) fails instead:
    what it proves must not quietly go unproved on a machine that lacks something."""
    report = yield
    if report.skipped and item.get_closest_marker("must_run") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} must run (marked must_run) but was skipped: " + str(
            report.longrepr
        )
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, a worker hands the latencies and IAM records to the controller;
    the controller (or a run without workers) compares IAM's used with granted."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["latencies"] = json.dumps(LATENCIES)
        session.config.workeroutput["iam"] = json.dumps(IAM_SNAPSHOTS)
        return
    if IAM_SNAPSHOTS and not _iam_used_versus_granted() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest -p no:xdist still runs
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's controller: a worker is done; keep the latencies and IAM records."""
    output = getattr(node, "workeroutput", {})
    recorded = json.loads(output.get("latencies", "{}"))
    for load, values in recorded.items():
        LATENCIES.setdefault(load, []).extend(values)
    IAM_SNAPSHOTS.extend(json.loads(output.get("iam", "[]")))


IAM_SUMMARY: list[str] = []


def _iam_used_versus_granted() -> bool:
    """Compare every role's grants with the calls the e2e tests made (devstack/iam_report.py),
    write the table to .local/iam-used-vs-granted.md, and say whether all is well. Enforced
    (False fails the run) with IAM_COVERAGE=enforce, which make test / test-e2e set: only the
    whole suite uses every grant; a part of it just gets the table."""
    snapshots = [s for s in IAM_SNAPSHOTS if s.get("enforced")]
    if not snapshots:
        return True
    prefix = snapshots[0].get("deployment", "")
    comparison = iam_report.compare(iam_report.stacks_of(snapshots), prefix=prefix)
    lines = iam_report.render(comparison)
    report = STATE_DIR / "iam-used-vs-granted.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n")
    enforce = os.environ.get("IAM_COVERAGE") == "enforce"
    problems = [line for line in lines if not line.startswith("|")]
    unused = len(comparison.unexplained)
    IAM_SUMMARY.append(
        f"IAM used vs granted ({report}): {len(comparison.grants)} grants, "
        f"{len(comparison.grants) - unused - len(comparison.explained)} used, "
        f"{len(comparison.explained)} unused with a reason, {unused} unused without one, "
        f"{len(comparison.denials)} calls denied"
        + ("" if enforce else " (not enforced: IAM_COVERAGE=enforce for the whole suite)")
    )
    IAM_SUMMARY.extend(
        problems if enforce else [line for line in problems if line.startswith("DENIED")]
    )
    return comparison.ok or (not enforce and not comparison.denials)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in IAM_SUMMARY:
        terminalreporter.write_line(line)
    for load, values in LATENCIES.items():
        ordered = sorted(values)
        p50 = ordered[len(ordered) // 2]
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        terminalreporter.write_line(
            f"upload -> notification, {load} ({len(ordered)} uploads): "
            f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"
        )
