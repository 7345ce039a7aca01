"""scripts/load.py, its pure parts: the choice of inputs, percentiles, the report."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from media_pipeline.model import media_id

from tests.support import s3_event

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("load_script", ROOT / "scripts" / "load.py")
load = importlib.util.module_from_spec(spec)
sys.modules["load_script"] = load
spec.loader.exec_module(load)


# -- percentiles --------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank_on_unsorted_input():
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1
    assert load.percentile(values, 50) == 50
    assert load.percentile(values, 95) == 95
    assert load.percentile(values, 99) == 99
    assert load.percentile(values, 100) == 100


def test_percentiles_of_few_values_are_values_seen():
    assert load.percentile([3.0], 50) == 3.0
    assert load.percentile([3.0], 99) == 3.0
    assert load.percentile([1.0, 2.0, 10.0], 50) == 2.0
    assert load.percentile([1.0, 2.0, 10.0], 95) == 10.0
    assert load.percentile([1.0, 2.0, 10.0], 0) == 1.0
    assert load.percentile([], 50) is None


# -- the choice of inputs -----------------------------------------------------------------------


def write_manifest(directory: Path, rows: list[tuple[str, str, bytes]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["file,expect,why"]
    for name, expect, data in rows:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
        lines.append(f"{name},{expect},")
    (directory / "manifest.csv").write_text("\n".join(lines) + "\n")


def test_only_jpeg_png_webp_heif_that_render_or_are_corrupt_are_chosen_each_content_once(
    tmp_path,
):
    write_manifest(
        tmp_path / "corpus",
        [
            ("a/photo.jpg", "render", b"jpeg-1" * 100),
            ("a/photo.JPEG", "render", b"jpeg-2"),
            ("b/pic.png", "render", b"png"),
            ("b/pic.webp", "render", b"webp"),
            ("c/iphone.heif", "render", b"heif"),
            ("c/anim.gif", "render", b"gif"),
            ("c/scan.tif", "render", b"tif"),
            ("c/new.avif", "render", b"avif"),
            ("d/broken.png", "reject:corrupt", b"broken-png"),
            ("d/bomb.png", "reject:too_large", b"bomb"),
            ("d/zero.gif", "reject:corrupt", b"zero-gif"),
        ],
    )
    write_manifest(
        tmp_path / "samples",
        [
            ("same-photo.jpg", "render", b"jpeg-1" * 100),  # the same bytes as a/photo.jpg
            ("other.jpg", "render", b"jpeg-3"),
            ("broken.jpg", "reject:corrupt", b"broken-jpg"),
        ],
    )
    sources = [
        *load.read_manifest(tmp_path / "corpus", "corpus"),
        *load.read_manifest(tmp_path / "samples", "samples"),
    ]

    renderable, corrupt = load.choose_sources(sources)

    assert [s.name for s, _ in renderable] == [
        "corpus/a/photo.jpg",
        "corpus/a/photo.JPEG",
        "corpus/b/pic.png",
        "corpus/b/pic.webp",
        "corpus/c/iphone.heif",
        "samples/other.jpg",
    ]
    assert [s.name for s, _ in corrupt] == ["corpus/d/broken.png", "samples/broken.jpg"]
    assert corrupt[0][1] == b"broken-png"


def test_the_samples_manifest_gives_its_photos_and_its_broken_jpeg():
    renderable, corrupt = load.choose_sources(load.read_manifest(ROOT / "samples", "samples"))
    names = {s.name for s, _ in renderable}
    assert "samples/landscape-exif-rotated.jpg" in names
    assert "samples/iphone-style.heif" in names
    assert "samples/animated.gif" not in names
    assert [s.name for s, _ in corrupt] == ["samples/broken.jpg"]


def sources(count: int, corrupt: int = 2):
    renderable = [
        (load.Source(f"c/photo{i}.jpg", Path(f"photo{i}.jpg"), "render"), bytes([i]) * (100 + i))
        for i in range(count)
    ]
    renderable.append((load.Source("c/pic.png", Path("pic.png"), "render"), b"png" * 1000))
    bad = [
        (load.Source(f"c/bad{i}.png", Path(f"bad{i}.png"), "reject:corrupt"), b"bad%d" % i)
        for i in range(corrupt)
    ]
    return renderable, bad


def test_a_plan_of_200_cycles_the_photos_with_5_percent_corrupt_spread_and_half_direct():
    renderable, bad = sources(7, corrupt=3)

    planned = load.plan(renderable, bad, 200)

    assert [p.index for p in planned] == list(range(200))
    corrupt = [p for p in planned if p.expect == "reject:corrupt"]
    assert len(corrupt) == 10
    # the manifest's corrupt files first, then truncated copies of the largest JPEG
    assert [p.file for p in corrupt[:3]] == ["c/bad0.png", "c/bad1.png", "c/bad2.png"]
    largest = renderable[6][1]
    for p in corrupt[3:]:
        assert p.file == f"c/photo6.jpg truncated to {len(p.data)} B"
        assert largest.startswith(p.data)
        assert len(largest) * 0.25 - 1 <= len(p.data) <= len(largest) * 0.9
    assert len({p.data for p in corrupt}) == 10
    # spread through the burst, not bunched at one end
    positions = [p.index for p in corrupt]
    assert positions[0] < 20
    assert positions[-1] > 180
    # every renderable file, cycled
    good = [p for p in planned if p.expect == "render"]
    assert Counter(p.file for p in good) == {
        s.name: 190 // 8 + (i < 190 % 8) for i, (s, _) in enumerate(renderable)
    }
    # half straight to S3, half through the API, corrupt files both ways
    assert Counter(p.route for p in planned) == {"direct": 100, "api": 100}
    assert Counter(p.route for p in corrupt) == {"direct": 5, "api": 5}
    assert {p.filename for p in good} == {
        "photo0.jpg",
        "photo1.jpg",
        "photo2.jpg",
        "photo3.jpg",
        "photo4.jpg",
        "photo5.jpg",
        "photo6.jpg",
        "pic.png",
    }


def test_a_plan_of_1000_has_50_distinct_corrupt_inputs():
    renderable, bad = sources(3, corrupt=4)
    planned = load.plan(renderable, bad, 1000, direct_fraction=0.25)
    corrupt = [p for p in planned if p.expect == "reject:corrupt"]
    assert len(corrupt) == 50
    assert len({p.data for p in corrupt}) == 50
    assert len({p.filename for p in corrupt}) == 50
    assert Counter(p.route for p in planned) == {"direct": 250, "api": 750}


@pytest.mark.parametrize(("n", "corrupt"), [(1, 0), (2, 1), (30, 2), (200, 10), (1000, 50)])
def test_about_5_percent_are_corrupt(n, corrupt):
    renderable, bad = sources(2)
    planned = load.plan(renderable, bad, n)
    assert len(planned) == n
    assert sum(p.expect == "reject:corrupt" for p in planned) == corrupt


def test_all_direct_or_all_through_the_api():
    renderable, bad = sources(2)
    assert {p.route for p in load.plan(renderable, bad, 30, direct_fraction=1)} == {"direct"}
    assert {p.route for p in load.plan(renderable, bad, 30, direct_fraction=0)} == {"api"}


def test_a_plan_needs_a_renderable_file():
    with pytest.raises(ValueError, match="no renderable"):
        load.plan([], [], 10)


# -- the report ---------------------------------------------------------------------------------


def seen(file, status, heard=(), *, expect="render", route="direct", reason=None, **kw):
    kw.setdefault("image_id", file.replace("/", "-"))
    kw.setdefault("started", 100.0)
    kw.setdefault("finished", 101.0)
    return load.Observation(
        file=file,
        expect=expect,
        route=route,
        status=status,
        reason=reason,
        heard=[load.Heard(t, r, at) for t, r, at in heard],
        **kw,
    )


READY = "image.ready"
FAILED = "image.failed"


def test_the_report_counts_outcomes_notifications_and_every_corrupt_file():
    observations = [
        seen("a.jpg", "READY", [(READY, None, 102.0)]),
        seen("b.jpg", "READY", [(READY, None, 103.0)], route="api"),
        seen("c.jpg", "READY", [(READY, None, 104.0), (READY, None, 105.0)]),  # duplicated
        seen("d.jpg", "PROCESSING"),  # stuck, never announced
        seen("e.jpg", "READY"),  # READY but never announced
        seen("f.jpg", "FAILED", [(FAILED, "processing_error", 111.0)], reason="processing_error"),
        seen(
            "bad.png",
            "FAILED",
            [(FAILED, "corrupt", 101.5)],
            expect="reject:corrupt",
            route="api",
            reason="corrupt",
        ),
        seen("cut.jpg", "READY", [(READY, None, 106.0)], expect="reject:corrupt"),  # wrong
        seen("g.jpg", None, route="api", image_id=None, finished=None, error="HTTP 500"),
    ]
    dlqs = [
        load.Dlq("metadata_dlq", 1, 1, 0, ("c.jpg", "f.jpg")),
        load.Dlq("notifier_dlq", 1, 0, 0, (None,)),
        load.Dlq("thumbnail_dlq", 0, 0, 2, ()),
    ]
    engine = load.EngineRun(
        workers=2,
        seconds=1.0,
        outcomes=("render",) * 6 + ("reject:corrupt", "render", "render"),
    )

    report = load.assemble(
        observations, dlqs=dlqs, engine=engine, other_notifications=3, settings={"threads": 16}
    )

    assert report["n"] == 9
    assert report["uploads"] == {
        "direct": 6,
        "api": 3,
        "corrupt": 2,
        "failed": 1,
        "errors": [{"file": "g.jpg", "route": "api", "error": "HTTP 500"}],
    }
    assert report["outcome"] == {
        "ready": 5,
        "failed": 2,
        "failed_by_reason": {"corrupt": 1, "processing_error": 1},
        "stuck": 1,
        "stuck_by_status": {"PROCESSING": 1},
    }
    assert report["notifications"] == {
        "exactly_once": 5,
        "missing": 2,
        "missing_and_stuck": 1,
        "duplicated": 1,
        "by_type": {FAILED: 2, READY: 5},
        "disagreeing_with_item": 0,
        "of_other_images": 3,
    }
    assert [(c["file"], c["status"], c["reason"], c["ok"]) for c in report["corrupt_files"]] == [
        ("bad.png", "FAILED", "corrupt", True),
        ("cut.jpg", "READY", None, False),
    ]
    assert report["dlqs"]["metadata_dlq"] == {
        "messages": 1,
        "in_flight": 1,
        "depth": 2,
        "depth_at_start": 0,
    }
    assert report["dlqs"]["thumbnail_dlq"]["depth_at_start"] == 2
    assert report["dlq_messages"] == {
        "read": 3,
        "of_this_run": 2,
        "of_images_that_ended_ready": 1,  # c.jpg
        "not_attributable": 1,
    }
    # latency from the end of each upload (101.0) to its first notification
    assert report["latency_s"] == {"count": 6, "p50": 2.0, "p95": 10.0, "p99": 10.0, "max": 10.0}
    # 6 images notified between the first upload start (100.0) and the last first notification
    assert report["throughput"]["notified"] == 6
    assert report["throughput"]["span_s"] == 11.0
    assert report["throughput"]["pipeline_images_per_s"] == 0.55
    assert report["throughput"]["engine_images_per_s"] == 9.0
    assert report["throughput"]["pipeline_to_engine"] == 0.061
    assert report["engine_disagreements"] == [
        {"file": "cut.jpg", "expect": "reject:corrupt", "engine": "render"}
    ]
    assert [i["file"] for i in report["stuck_images"]] == ["d.jpg"]
    assert [i["file"] for i in report["missing_images"]] == ["d.jpg", "e.jpg"]
    assert report["duplicated_images"][0]["notifications"] == {READY: 2}
    assert report["problems"] == [
        "1 uploads failed",
        "1 stuck (neither READY nor FAILED)",
        "2 without a notification",
        "1 notified more than once",
        "1 corrupt files did not end FAILED (corrupt)",
    ]
    assert report["ok"] is False
    json.dumps(report)  # it is written as JSON

    text = load.format_report(report)
    assert "READY        5" in text
    assert "corrupt 1, processing_error 1" in text
    assert "FAILED: 1 uploads failed" in text
    assert "cut.jpg" in text


def test_a_clean_run_is_ok():
    observations = [
        seen("a.jpg", "READY", [(READY, None, 102.0)]),
        seen(
            "bad.png",
            "FAILED",
            [(FAILED, "corrupt", 101.5)],
            expect="reject:corrupt",
            route="api",
            reason="corrupt",
        ),
    ]
    report = load.assemble(observations)
    assert report["problems"] == []
    assert report["ok"] is True
    assert report["notifications"]["exactly_once"] == 2
    assert report["throughput"]["engine_images_per_s"] is None
    assert load.format_report(report).endswith(
        "OK: every image ended READY or FAILED and was announced exactly once"
    )


def test_a_notification_the_item_contradicts_is_counted():
    report = load.assemble([seen("a.jpg", "FAILED", [(READY, None, 102.0)], reason="corrupt")])
    assert report["notifications"]["disagreeing_with_item"] == 1


# -- DLQ messages -------------------------------------------------------------------------------


def test_a_dlq_message_names_its_image():
    key = "uploads/0123/photo.jpg"
    event = json.dumps(s3_event(bucket="up", key=key, etag="e", size=1))
    assert media_id("up", key) in load.dlq_image_ids(event)

    notification = json.dumps({"type": "image.failed", "image": {"id": "abc"}})
    assert load.dlq_image_ids(notification) == {"abc"}

    stream_batch = json.dumps({"DDBStreamBatchInfo": {"shardId": "s", "batchSize": 1}})
    assert load.dlq_image_ids(stream_batch) == set()
    assert load.dlq_image_ids("not json") == set()


def test_every_dlq_in_the_outputs_is_read():
    outputs = {
        "queues": {
            "thumbnail_jobs": "u1",
            "thumbnail_dlq": "u2",
            "metadata_jobs": "u3",
            "metadata_dlq": "u4",
            "notifier_dlq": "u5",
            "undelivered_events": "u6",
            "app_events_dlq": "u7",
        }
    }
    assert load.dlq_names(outputs) == [
        "app_events_dlq",
        "metadata_dlq",
        "notifier_dlq",
        "thumbnail_dlq",
        "undelivered_events",
    ]


def test_the_engine_rate_counts_every_timed_pass_over_the_inputs():
    observations = [seen("a.jpg", "READY", [(READY, None, 103.0)])]
    engine = load.EngineRun(workers=2, seconds=4.0, outcomes=("render",), rounds=20)
    throughput = load.assemble(observations, engine=engine)["throughput"]
    assert throughput["engine_images_per_s"] == 5.0
    assert throughput["pipeline_images_per_s"] == 0.33
    assert throughput["pipeline_to_engine"] == 0.067
    assert "1 files x 20" in load.format_report(load.assemble(observations, engine=engine))


def test_the_emulator_cost_is_the_burst_s_share_per_notified_image():
    before = load.Usage(10.0, {"s3 PUT": 5, "sqs ReceiveMessage": 100}, 1.0)
    after = load.Usage(
        22.0,
        {"s3 PUT": 305, "sqs ReceiveMessage": 400, "dynamodb UpdateItem": 600, "lambda GET": 0},
        3.0,
    )
    cost = load.emulator_cost(before, after, images=100, top=2)
    assert cost == {
        "images": 100,
        "requests_per_image": 12.0,
        "top_operations_per_image": {"dynamodb UpdateItem": 6.0, "s3 PUT": 3.0},
        "server_cpu_ms_per_image": 120,
        "load_generator_cpu_ms_per_image": 20,
    }
    text = load.format_report(
        load.assemble([seen("a.jpg", "READY", [(READY, None, 102.0)])], emulator=cost)
    )
    assert "  requests        12.0  (dynamodb UpdateItem 6.0, s3 PUT 3.0)" in text
    assert (
        "  server CPU      120 ms  (one process: at most one core, so at most 8.3 images/s" in text
    )
