"""make capacity's workload and model on the session's running stack: a small run whose report
agrees with what the stack counted (scripts/capacity.py, tooling/capacity.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from tooling import capacity

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.embedded_only("counts what the embedded stack served (its usage recorder)"),
]


def _script(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sys.modules.setdefault("load", _script("load_for_capacity_e2e", ROOT / "scripts" / "load.py"))
script = _script("capacity_script_e2e", ROOT / "scripts" / "capacity.py")


def test_a_small_run_gives_a_report_consistent_with_the_stacks_own_counts(local_stack):
    # GIVEN the running stack, WHEN the capacity workload uploads 4 images through the API
    # (its wait for their notifications and the quiet period after are bounded generously)
    measured = script.run_workload(local_stack, 4, timeout=300, say=lambda *a, **k: None)
    measured.update(label="e2e", production=script.local_settings(measured["deployment"]))
    report = capacity.model(measured, capacity.load_prices())

    # THEN every image was uploaded and announced
    assert measured["images"]["uploaded"] == 4, measured["images"]
    assert measured["images"]["notified"] == 4, measured["images"]
    images = report["images"]

    # AND DynamoDB wrote something for each, the table's and its indexes' units adding up
    assert report["dynamodb"]["total_wu_per_image"] > 0
    per_table = sum(t["wu"] for t in report["dynamodb"]["per_table"].values())
    assert per_table == pytest.approx(report["dynamodb"]["total_wu_per_image"])

    # AND the report's requests are the recorder's raw counts, per image
    raw = measured["usage"]["requests"]
    uploads = sum(
        r["count"]
        for r in raw
        if r["service"] == "execute-api" and r["operation"] == "POST /uploads"
    )
    assert uploads == 4
    rows = {(r["service"], r["operation"]): r for r in report["requests"]["rows"]}
    assert rows[("execute-api", "POST /uploads")]["pipeline"] * images == pytest.approx(uploads)
    posts = sum(
        r["count"] for r in measured["usage"]["s3"]["requests"] if r["operation"] == "PostObject"
    )
    assert posts == 4  # each image's presigned POST, classed as S3 bills it
    assert rows[("s3", "PostObject")]["pipeline"] * images == pytest.approx(posts)
    scheduled = {e["function"] for e in measured["journal"] if e.get("source") == "events"}
    for (service, operation), row in rows.items():
        if service in ("s3", "sqs") or "(" in operation:
            continue  # from their own detailed counts, or not HTTP requests at all
        counted = sum(
            r["count"]
            for r in raw
            if (r["service"], r["operation"]) == (service, operation)
            and capacity.role(r["caller"], service, operation, scheduled)
            not in (capacity.EXCLUDED, capacity.SCHEDULED)
        )
        assert row["all"] * images == pytest.approx(counted), (service, operation)

    # AND every function that ran has a duration, billed and priced
    functions = {name: f for name, f in report["lambda"].items() if f["invocations"]}
    assert functions
    for name, function in functions.items():
        assert function["mean_duration_s"] > 0, name
        assert function["billed_ms_per_image"] > 0, name
    assert report["cost"]["total_usd_per_million"] > 0
    assert report["ceilings"]["a"][capacity.PER_DEPLOYMENT]["uploads_per_s"] > 0
    assert "### Cost per million images (USD)" in capacity.format_report(report)
