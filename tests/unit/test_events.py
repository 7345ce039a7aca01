"""Parsing S3 Object Created events delivered through EventBridge into SQS."""

from __future__ import annotations

import json

import pytest
from media_pipeline.events import (
    InvalidEvent,
    ObjectDeleted,
    normalise_sequencer,
    parse_job,
    parse_object_created,
)

from tests.support import s3_deleted_event, s3_event


def body(**kwargs) -> str:
    defaults = {"bucket": "uploads", "key": "uploads/a/cat.jpg", "etag": "abc123", "size": 42}
    return json.dumps(s3_event(**{**defaults, **kwargs}))


def test_aws_shape_is_parsed():
    event = parse_object_created(
        body(etag='"d41d8cd98f00b204e9800998ecf8427e"', sequencer="0055AED6DCD90281E5")
    )

    assert event.bucket == "uploads"
    assert event.raw_key == "uploads/a/cat.jpg"
    assert event.etag == "d41d8cd98f00b204e9800998ecf8427e"  # quotes stripped
    assert event.size == 42
    assert event.sequencer == "00000000000000" + "0055AED6DCD90281E5"
    assert event.version_id is None


def test_moto_spells_the_etag_field_eTag():
    assert parse_object_created(body(etag_field="eTag", etag="fff")).etag == "fff"


def test_version_id_is_kept_when_versioning_is_on():
    assert parse_object_created(
        body(version_id="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
    ).version_id == ("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")


@pytest.mark.parametrize(
    ("raw", "candidates"),
    [
        # AWS and moto deliver keys raw: a literal "+" must stay a "+" (Powertools would turn it
        # into a space), and "%20" typed by a user is a real "%20".
        ("uploads/a/x+y.jpg", ("uploads/a/x+y.jpg",)),
        ("uploads/a/100%.jpg", ("uploads/a/100%.jpg",)),
        ("uploads/a/café ☕.png", ("uploads/a/café ☕.png",)),
        # LocalStack percent-encodes: the decoding is offered second, S3 decides which exists.
        ("uploads/a/my%20photo.jpg", ("uploads/a/my%20photo.jpg", "uploads/a/my photo.jpg")),
        ("uploads/a/caf%C3%A9.png", ("uploads/a/caf%C3%A9.png", "uploads/a/café.png")),
        ("uploads/a/x%2By.jpg", ("uploads/a/x%2By.jpg", "uploads/a/x+y.jpg")),
        # A key that really contains "%20", as LocalStack encodes it: decoded once, not twice.
        ("uploads/a/my%2520photo.jpg", ("uploads/a/my%2520photo.jpg", "uploads/a/my%20photo.jpg")),
    ],
)
def test_candidate_keys(raw, candidates):
    assert parse_object_created(body(key=raw)).candidate_keys() == candidates


def test_sequencers_of_different_lengths_order_correctly():
    older, newer = "FF", "0100"  # 0xFF < 0x100, though "FF" > "0100" as plain strings
    assert normalise_sequencer(older) < normalise_sequencer(newer)
    assert normalise_sequencer("0055aed6dcd90281e5") == normalise_sequencer("0055AED6DCD90281E5")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"source": "aws.s3"}), "lacks"),
        (
            json.dumps(
                {**s3_event(bucket="b", key="k", etag="e", size=1), "detail-type": "Object Deleted"}
            ),
            "Object Created",
        ),
        (
            json.dumps({**s3_event(bucket="b", key="k", etag="e", size=1), "source": "my.app"}),
            "aws.s3",
        ),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(payload, message):
    with pytest.raises(InvalidEvent, match=message):
        parse_object_created(payload)


def test_missing_fields_are_named():
    event = s3_event(bucket="b", key="k", etag="e", size=1)
    del event["detail"]["object"]["sequencer"]
    del event["detail"]["bucket"]["name"]
    with pytest.raises(InvalidEvent, match=r"detail\.bucket\.name, detail\.object\.sequencer"):
        parse_object_created(json.dumps(event))


@pytest.mark.parametrize("bad", ["xyz", "", "1" * 33])
def test_bad_sequencers_are_rejected(bad):
    with pytest.raises(InvalidEvent):
        normalise_sequencer(bad)


def test_a_negative_or_missing_size_is_rejected():
    with pytest.raises(InvalidEvent, match="size"):
        parse_object_created(body(size=-1))


def test_an_object_deleted_event_is_parsed_as_a_deletion():
    body = json.dumps(
        s3_deleted_event(bucket="b", key="uploads/a b+c.jpg", sequencer="00AB", version_id="v1")
    )
    job = parse_job(body)
    assert isinstance(job, ObjectDeleted)
    assert (job.bucket, job.raw_key, job.version_id) == ("b", "uploads/a b+c.jpg", "v1")
    assert job.sequencer == normalise_sequencer("00AB")
    assert job.deletion_type == "Permanently Deleted"


def test_an_object_created_event_is_still_a_creation():
    body = json.dumps(s3_event(bucket="b", key="k", etag="e", size=1))
    assert parse_job(body) == parse_object_created(body)


def test_a_job_is_read_from_one_parse_of_its_body(monkeypatch):
    message = body()
    parsed = []
    loads = json.loads
    monkeypatch.setattr(json, "loads", lambda text: parsed.append(text) or loads(text))
    parse_job(message)
    assert parsed == [message]


def test_an_object_deleted_event_without_a_sequencer_is_refused():
    event = s3_deleted_event(bucket="b", key="k", sequencer="00AB")
    del event["detail"]["object"]["sequencer"]
    with pytest.raises(InvalidEvent, match="sequencer"):
        parse_job(json.dumps(event))
