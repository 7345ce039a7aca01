"""The thumbnail and metadata handlers against moto (in process): the item's life, exactly once."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from media_pipeline import objects
from media_pipeline.events import normalise_sequencer
from media_pipeline.fingerprint import rendition_fingerprints, settings_fingerprint
from media_pipeline.imaging import DEFAULT_RENDITIONS, EncodeOptions
from media_pipeline.item_writes import Completion
from media_pipeline.media_store import MediaTable
from media_pipeline.model import Decision, Half, ObjectVersion, media_id
from PIL import Image

from tests.integration.conftest import MEDIA_TABLE, RENDITIONS, UPLOADS, count_calls
from tests.support import s3_event, sqs_record

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PHOTO = (SAMPLES / "landscape-exif-rotated.jpg").read_bytes()
BROKEN = (SAMPLES / "broken.jpg").read_bytes()


def event_for(
    aws, key: str, etag: str, *, sequencer: str = "0055AED6DCD90281E5", raw_key: str | None = None
) -> dict:
    size = aws.s3.head_object(Bucket=UPLOADS, Key=key)["ContentLength"]
    return s3_event(bucket=UPLOADS, key=raw_key or key, etag=etag, size=size, sequencer=sequencer)


def invoke(handler, lambda_context, *bodies, receive_count: int = 1) -> dict:
    records = [sqs_record(body, receive_count=receive_count) for body in bodies]
    return handler.lambda_handler({"Records": records}, lambda_context)


def item(aws, key: str) -> dict:
    found = aws.media_item(media_id(UPLOADS, key))
    assert found is not None, f"no media item for {key}"
    return found


@pytest.fixture
def workers(load_handler):
    return load_handler("thumbnail"), load_handler("metadata")


@pytest.mark.parametrize("order", ["thumbnail first", "metadata first"])
def test_both_halves_make_the_item_ready_whichever_finishes_last(
    aws, workers, lambda_context, order
):
    thumbnail, metadata = workers
    etag = aws.put_upload("uploads/a/photo.jpg", PHOTO)
    event = event_for(aws, "uploads/a/photo.jpg", etag)
    first, second = (thumbnail, metadata) if order == "thumbnail first" else (metadata, thumbnail)

    assert invoke(first, lambda_context, event) == {"batchItemFailures": []}
    assert item(aws, "uploads/a/photo.jpg")["status"] == "PROCESSING"
    assert invoke(second, lambda_context, event) == {"batchItemFailures": []}

    record = item(aws, "uploads/a/photo.jpg")
    assert record["status"] == "READY"
    assert record["etag"] == etag
    assert "ready_at" in record
    assert set(record["renditions"]) == {"large", "medium", "small"}
    assert record["metadata"]["width"] == 1800
    assert record["metadata"]["orientation"] == 6
    assert record["metadata"]["sha256"] == hashlib.sha256(PHOTO).hexdigest()  # hashed as it came
    # the placeholder and dominant colour are the renditions half's, made from its renditions
    assert "placeholder" not in record["metadata"]
    assert record["renditions_etag"] == etag
    assert record["preview"]["placeholder"].startswith("data:image/webp;base64,")
    assert record["preview"]["dominant_color"].startswith("#")
    large = record["renditions"]["large"]
    fingerprint = rendition_fingerprints(DEFAULT_RENDITIONS, EncodeOptions())["large"]
    image_id = media_id(UPLOADS, "uploads/a/photo.jpg")
    assert large["key"] == f"{image_id}/{etag}/large-{fingerprint}.jpg"
    assert record["renditions_settings"] == settings_fingerprint(
        DEFAULT_RENDITIONS, EncodeOptions()
    )
    data = aws.s3.get_object(Bucket=RENDITIONS, Key=large["key"])["Body"].read()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (1024, 683)


def test_the_same_event_twice_renders_once(aws, workers, lambda_context):
    # GIVEN an event the thumbnail worker has done once
    thumbnail, _ = workers
    etag = aws.put_upload("uploads/a/photo.jpg", PHOTO)
    event = event_for(aws, "uploads/a/photo.jpg", etag)
    invoke(thumbnail, lambda_context, event)
    record = item(aws, "uploads/a/photo.jpg")
    puts = count_calls(thumbnail.s3, "PutObject")
    writes = count_calls(thumbnail.worker._table._client, "UpdateItem")
    reads = tracked_reads(thumbnail.s3)

    # WHEN it comes again (another message, the same S3 event)
    assert invoke(thumbnail, lambda_context, event) == {"batchItemFailures": []}

    # THEN the item says it is done: nothing is read, rendered or written, the item unchanged
    assert (puts, writes, reads) == ([], [], [])
    assert item(aws, "uploads/a/photo.jpg") == record


def test_the_media_item_is_the_only_record_the_workers_keep(aws, workers, lambda_context):
    # The item is keyed on the object and records the ETag of each half: no idempotency table.
    thumbnail, metadata = workers
    etag = aws.put_upload("uploads/a/photo.jpg", PHOTO)
    event = event_for(aws, "uploads/a/photo.jpg", etag)
    for handler in (thumbnail, metadata, thumbnail, metadata):
        invoke(handler, lambda_context, event)
    assert aws.dynamodb.scan(TableName="idempotency")["Items"] == []
    assert item(aws, "uploads/a/photo.jpg")["status"] == "READY"


def tracked_reads(s3) -> list[int]:
    """The sizes of every read of a GetObject body made through ``s3`` from now on."""
    reads: list[int] = []

    class Tracked:
        def __init__(self, body) -> None:
            self._body = body

        def read(self, *args):
            data = self._body.read(*args)
            reads.append(len(data))
            return data

        def close(self) -> None:
            self._body.close()

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.close()

    def wrap(parsed, **_) -> None:
        if "Body" in parsed:
            parsed["Body"] = Tracked(parsed["Body"])

    s3.meta.events.register("after-call.s3.GetObject", wrap)
    return reads


def test_a_corrupt_image_fails_at_once_and_its_message_is_deleted(aws, workers, lambda_context):
    thumbnail, metadata = workers
    etag = aws.put_upload("uploads/a/broken.jpg", BROKEN)
    event = event_for(aws, "uploads/a/broken.jpg", etag)

    assert invoke(thumbnail, lambda_context, event) == {"batchItemFailures": []}
    record = item(aws, "uploads/a/broken.jpg")
    assert record["status"] == "FAILED"
    assert record["failure"]["stage"] == "thumbnail"
    assert record["failure"]["reason"] == "corrupt"
    assert record["failure"]["message"]

    # the other half gives up on it too, without a second failure: on a redelivery without
    # reading the object, on a first delivery (it writes without reading the item first) with
    # its one write refused
    failed = item(aws, "uploads/a/broken.jpg")
    reads = tracked_reads(metadata.s3)
    writes = count_calls(metadata.worker._table._client, "UpdateItem")
    assert invoke(metadata, lambda_context, event, receive_count=2) == {"batchItemFailures": []}
    assert (reads, writes) == ([], [])
    assert invoke(metadata, lambda_context, event) == {"batchItemFailures": []}
    assert len(writes) == 1
    assert item(aws, "uploads/a/broken.jpg") == failed


def test_an_object_over_the_byte_limit_fails_without_being_downloaded(
    aws, load_handler, lambda_context, monkeypatch
):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1024")
    thumbnail = load_handler("thumbnail")
    etag = aws.put_upload("uploads/a/photo.jpg", PHOTO)
    reads = tracked_reads(thumbnail.s3)

    invoke(thumbnail, lambda_context, event_for(aws, "uploads/a/photo.jpg", etag))

    assert reads == []  # the GET's headers said how large; its body was never read
    assert item(aws, "uploads/a/photo.jpg")["failure"]["reason"] == "too_large"


def test_a_poison_record_fails_alone(aws, workers, lambda_context):
    thumbnail, _ = workers
    good = [aws.put_upload(f"uploads/{i}/photo.jpg", PHOTO) for i in range(2)]
    records = [
        sqs_record(event_for(aws, "uploads/0/photo.jpg", good[0])),
        sqs_record("{not json", message_id="poison"),
        sqs_record(event_for(aws, "uploads/1/photo.jpg", good[1])),
    ]

    response = thumbnail.lambda_handler({"Records": records}, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert all(item(aws, f"uploads/{i}/photo.jpg")["renditions_etag"] == good[i] for i in range(2))


def _throttle_renditions(thumbnail):
    def refuse(**_):
        raise ClientError(
            {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
            "PutObject",
        )

    thumbnail.s3.meta.events.register("before-call.s3.PutObject", refuse)


def test_a_transient_error_is_retried_and_the_last_attempt_records_why(
    aws, workers, lambda_context
):
    thumbnail, _ = workers
    etag = aws.put_upload("uploads/a/photo.jpg", PHOTO)
    body = event_for(aws, "uploads/a/photo.jpg", etag)
    _throttle_renditions(thumbnail)

    # an early attempt: the record fails (SQS will redeliver it), nothing is recorded
    first = thumbnail.lambda_handler(
        {"Records": [sqs_record(body, message_id="m1", receive_count=1)]}, lambda_context
    )
    assert first == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert aws.media_item(media_id(UPLOADS, "uploads/a/photo.jpg")) is None

    # the last attempt (receive count = MAX_RECEIVE_COUNT) still fails, and says why on the item
    last = thumbnail.lambda_handler(
        {"Records": [sqs_record(body, message_id="m1", receive_count=3)]}, lambda_context
    )
    assert last == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    failure = item(aws, "uploads/a/photo.jpg")["failure"]
    assert failure["reason"] == "processing_error"
    assert failure["retryable"] is True
    assert "SlowDown" in failure["message"]


def test_a_redriven_message_completes_a_version_that_had_given_up(
    aws, load_handler, workers, lambda_context
):
    thumbnail, metadata = workers
    etag = aws.put_upload("uploads/a/photo.jpg", PHOTO)
    body = event_for(aws, "uploads/a/photo.jpg", etag)
    invoke(metadata, lambda_context, body)
    _throttle_renditions(thumbnail)
    invoke(thumbnail, lambda_context, body, receive_count=3)
    assert item(aws, "uploads/a/photo.jpg")["status"] == "FAILED"

    # the cause is fixed and the DLQ redriven: a fresh cold start, the same message
    healthy = load_handler("thumbnail")
    assert invoke(healthy, lambda_context, body) == {"batchItemFailures": []}
    record = item(aws, "uploads/a/photo.jpg")
    assert record["status"] == "READY"
    assert "failure" not in record


def test_an_older_event_never_overwrites_a_newer_upload(aws, workers, lambda_context):
    thumbnail, metadata = workers
    old_etag = aws.put_upload("uploads/a/photo.jpg", BROKEN)
    old_event = event_for(aws, "uploads/a/photo.jpg", old_etag, sequencer="0055AED6DCD9000001")
    new_etag = aws.put_upload("uploads/a/photo.jpg", PHOTO)
    new_event = event_for(aws, "uploads/a/photo.jpg", new_etag, sequencer="0055AED6DCD9000002")

    for handler in (thumbnail, metadata):
        invoke(handler, lambda_context, new_event)
    for handler in (thumbnail, metadata):  # the older event arrives late
        assert invoke(handler, lambda_context, old_event) == {"batchItemFailures": []}

    record = item(aws, "uploads/a/photo.jpg")
    assert (record["status"], record["etag"]) == ("READY", new_etag)
    assert record["sequencer"] == normalise_sequencer("0055AED6DCD9000002")


def test_an_event_for_content_already_replaced_is_skipped(aws, workers, lambda_context):
    thumbnail, _ = workers
    old_etag = aws.put_upload("uploads/a/photo.jpg", BROKEN)
    old_event = event_for(aws, "uploads/a/photo.jpg", old_etag)
    aws.put_upload("uploads/a/photo.jpg", PHOTO)  # replaced before the worker got to it
    puts = count_calls(thumbnail.s3, "PutObject")

    assert invoke(thumbnail, lambda_context, old_event) == {"batchItemFailures": []}
    assert puts == []
    # never recorded: a superseded version leaves no record
    key = {"id": {"S": media_id(UPLOADS, "uploads/a/photo.jpg")}}
    assert "Item" not in aws.dynamodb.get_item(TableName=MEDIA_TABLE, Key=key)


def test_new_content_replaces_the_renditions_of_the_old(aws, workers, lambda_context):
    thumbnail, metadata = workers
    first = aws.put_upload("uploads/a/photo.jpg", PHOTO)
    for handler in (thumbnail, metadata):
        invoke(
            handler, lambda_context, event_for(aws, "uploads/a/photo.jpg", first, sequencer="01")
        )
    old_keys = [r["key"] for r in item(aws, "uploads/a/photo.jpg")["renditions"].values()]

    second = aws.put_upload(
        "uploads/a/photo.jpg", (SAMPLES / "portrait-exif-rotated.jpg").read_bytes()
    )
    for handler in (thumbnail, metadata):
        invoke(
            handler, lambda_context, event_for(aws, "uploads/a/photo.jpg", second, sequencer="02")
        )

    record = item(aws, "uploads/a/photo.jpg")
    assert (record["status"], record["etag"]) == ("READY", second)
    assert record["renditions"]["large"]["height"] > record["renditions"]["large"]["width"]
    remaining = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=RENDITIONS).get("Contents", [])}
    assert remaining.isdisjoint(old_keys)
    assert len(remaining) == 3


# LocalStack puts this one sequencer in every S3 event it sends through EventBridge.
CONSTANT_SEQUENCER = "0062E99A88DC407460"


def test_new_content_under_a_constant_sequencer_is_ordered_by_s3(aws, workers, lambda_context):
    # GIVEN a key READY with its first content, from an event with LocalStack's constant sequencer
    thumbnail, metadata = workers
    key = "uploads/a/photo.jpg"
    first = aws.put_upload(key, PHOTO)
    first_event = event_for(aws, key, first, sequencer=CONSTANT_SEQUENCER)
    for handler in (thumbnail, metadata):
        invoke(handler, lambda_context, first_event)
    assert item(aws, key)["status"] == "READY"

    # WHEN new content is uploaded under the key, its event carrying the very same sequencer
    second = aws.put_upload(key, (SAMPLES / "portrait-exif-rotated.jpg").read_bytes())
    heads = count_calls(thumbnail.s3, "HeadObject")
    for handler in (thumbnail, metadata):
        assert invoke(
            handler, lambda_context, event_for(aws, key, second, sequencer=CONSTANT_SEQUENCER)
        ) == {"batchItemFailures": []}

    # THEN S3 said the new ETag is current, so the new content took the item over and is READY
    record = item(aws, key)
    assert (record["status"], record["etag"]) == ("READY", second)
    assert record["renditions"]["large"]["height"] > record["renditions"]["large"]["width"]
    assert [h.get("IfMatch") for h in heads] == [f'"{second}"']  # is_current, asked once

    # AND the first content's event, delivered again, changes nothing (S3 no longer holds it)
    for handler in (thumbnail, metadata):
        assert invoke(handler, lambda_context, first_event) == {"batchItemFailures": []}
    assert item(aws, key) == record


def test_an_older_event_for_the_content_the_item_holds_still_completes_it(
    aws, workers, lambda_context
):
    # GIVEN the thumbnail worker recorded the content from a later event for it (a redelivery
    # with another sequencer, or the reconciler's re-enqueue)
    thumbnail, metadata = workers
    key = "uploads/a/photo.jpg"
    etag = aws.put_upload(key, PHOTO)
    invoke(thumbnail, lambda_context, event_for(aws, key, etag, sequencer="0062E99A88DC407470"))

    # WHEN the metadata worker gets the original event for the same content, with its older
    # sequencer
    original = event_for(aws, key, etag, sequencer=CONSTANT_SEQUENCER)
    assert invoke(metadata, lambda_context, original) == {"batchItemFailures": []}

    # THEN it did its half (the same version, not a stale one) and the image is READY
    record = item(aws, key)
    assert (record["status"], record["etag"], record["metadata_etag"]) == ("READY", etag, etag)


def table_and_upload(aws, key: str, data: bytes, sequencer: str = CONSTANT_SEQUENCER):
    etag = aws.put_upload(key, data)
    upload = ObjectVersion(
        bucket=UPLOADS,
        key=key,
        etag=etag,
        size=len(data),
        content_type="image/jpeg",
        sequencer=normalise_sequencer(sequencer),
    )
    return MediaTable(aws.dynamodb, MEDIA_TABLE), upload


def record_half(table, upload, half=Half.RENDITIONS, is_current=None):
    """Record a half of ``upload`` the way a worker does: read the item, decide, write."""
    return table.record(
        upload, half, {"v": upload.etag}, seen=table.get(upload.id), is_current=is_current
    )


def test_an_equal_sequencer_takes_the_item_over_when_s3_holds_this_etag(aws):
    table, older = table_and_upload(aws, "uploads/a/photo.jpg", BROKEN)
    assert record_half(table, older).decision is Decision.NEW_VERSION
    _, newer = table_and_upload(aws, "uploads/a/photo.jpg", PHOTO)
    asked = []

    def is_current() -> bool:
        asked.append(newer.etag)
        return objects.is_current(aws.s3, newer)

    recorded = record_half(table, newer, is_current=is_current)
    assert (recorded.completion, recorded.decision) == (Completion.PARTIAL, Decision.NEW_VERSION)
    assert asked == [newer.etag]
    assert aws.media_item(newer.id)["etag"] == newer.etag


def test_an_equal_sequencer_is_stale_when_s3_holds_other_content(aws):
    table, older = table_and_upload(aws, "uploads/a/photo.jpg", BROKEN)
    _, newer = table_and_upload(aws, "uploads/a/photo.jpg", PHOTO)
    assert record_half(table, newer).decision is Decision.NEW_VERSION
    before = aws.media_item(newer.id)

    # the older content's half comes late: S3 holds the newer one, so the older is stale
    assert not objects.is_current(aws.s3, older)
    recorded = record_half(
        table, older, Half.METADATA, is_current=lambda: objects.is_current(aws.s3, older)
    )
    assert (recorded.completion, recorded.decision) == (Completion.SKIPPED, Decision.STALE)
    assert aws.media_item(newer.id) == before
    # without a way to ask S3, an unordered upload never takes the item
    assert record_half(table, older, Half.METADATA).decision is Decision.STALE


def test_an_equal_sequencer_with_the_same_etag_does_not_ask_s3(aws):
    table, upload = table_and_upload(aws, "uploads/a/photo.jpg", PHOTO)
    assert record_half(table, upload).decision is Decision.NEW_VERSION

    def never() -> bool:
        raise AssertionError("S3 was asked about a version the item already holds")

    recorded = record_half(table, upload, Half.METADATA, is_current=never)
    assert (recorded.completion, recorded.decision) == (Completion.READY, Decision.WORK)
    assert record_half(table, upload, is_current=never).decision is Decision.DUPLICATE


def test_a_take_over_that_loses_a_race_decides_again_on_what_won(aws):
    table, older = table_and_upload(aws, "uploads/a/photo.jpg", BROKEN)
    assert record_half(table, older).decision is Decision.NEW_VERSION
    _, newer = table_and_upload(aws, "uploads/a/photo.jpg", PHOTO)
    _, newest = table_and_upload(aws, "uploads/a/photo.jpg", PHOTO + b"\0", "0062E99A88DC407461")
    seen = table.get(newer.id)  # read before the newest upload lands
    landed = []

    def is_current_while_a_newer_upload_lands() -> bool:
        # between this worker's read and its take-over, an upload with a later sequencer lands
        if not landed:
            landed.append(record_half(table, newest, Half.METADATA).decision)
        return True

    recorded = table.record(
        newer,
        Half.RENDITIONS,
        {"v": newer.etag},
        seen=seen,
        is_current=is_current_while_a_newer_upload_lands,
    )
    assert landed == [Decision.NEW_VERSION]
    assert (recorded.completion, recorded.decision) == (Completion.SKIPPED, Decision.STALE)
    assert aws.media_item(newer.id)["etag"] == newest.etag


@pytest.mark.parametrize(
    ("real_key", "delivered_key"),
    [
        ("uploads/a/my photo.jpg", "uploads/a/my%20photo.jpg"),  # LocalStack percent-encodes
        ("uploads/a/my%20photo.jpg", "uploads/a/my%20photo.jpg"),  # AWS: a real "%20" in the key
        ("uploads/a/x+y.jpg", "uploads/a/x+y.jpg"),  # AWS: a real "+" (not a space)
        ("uploads/a/x+y.jpg", "uploads/a/x%2By.jpg"),  # LocalStack: the same key, encoded
        ("uploads/a/my%20photo.jpg", "uploads/a/my%2520photo.jpg"),  # LocalStack: a real "%20"
        ("uploads/a/café.jpg", "uploads/a/caf%C3%A9.jpg"),
    ],
)
def test_keys_are_resolved_whether_delivered_raw_or_percent_encoded(
    aws, workers, lambda_context, real_key, delivered_key
):
    thumbnail, metadata = workers
    etag = aws.put_upload(real_key, PHOTO)
    event = event_for(aws, real_key, etag, raw_key=delivered_key)

    for handler in (thumbnail, metadata):
        assert invoke(handler, lambda_context, event) == {"batchItemFailures": []}

    record = item(aws, real_key)
    assert (record["key"], record["status"]) == (real_key, "READY")
