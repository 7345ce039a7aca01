"""An image's life after READY, handler by handler against moto (in process): deleted through the
API or in S3 (also while it is being processed), brought up to date after a settings change, and
listed page by page. Notifications are checked by feeding the media table's real stream (moto's)
to the notifier."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from jsonschema import Draft202012Validator
from media_pipeline import reprocess
from media_pipeline.events import parse_object_created
from media_pipeline.model import media_id
from media_pipeline.reconcile import job_event

from tests.integration.conftest import MEDIA_TABLE, REGION, RENDITIONS, UPLOADS, count_calls
from tests.integration.test_api import request
from tests.support import s3_deleted_event, s3_event, sqs_record

ROOT = Path(__file__).resolve().parents[2]
PHOTO = (ROOT / "samples" / "landscape-exif-rotated.jpg").read_bytes()
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "media-event.v1.json").read_text())
KEY = "uploads/a/photo.jpg"
FIRST = "0055AED6DCD90281E5"
LATER = "0055AED6DCD90281F0"
NEW_MEDIUM = {"RENDITIONS": "large:1024,medium:400,small:128"}  # the medium rendition redefined


@pytest.fixture
def stack(aws, load_handler, monkeypatch):
    """The four functions of an image's life, as deployed (the API knows the uploads prefix)."""
    monkeypatch.setenv("UPLOAD_PREFIX", "uploads/")
    return {name: load_handler(name) for name in ("thumbnail", "metadata", "api", "notifier")}


def invoke(handler, lambda_context, *bodies) -> dict:
    return handler.lambda_handler({"Records": [sqs_record(b) for b in bodies]}, lambda_context)


def ready_image(aws, stack, lambda_context, key: str = KEY) -> tuple[str, str, dict]:
    """GIVEN an image made READY by both workers: its id, ETag and upload event."""
    etag = aws.put_upload(key, PHOTO)
    event = s3_event(bucket=UPLOADS, key=key, etag=etag, size=len(PHOTO), sequencer=FIRST)
    invoke(stack["thumbnail"], lambda_context, event)
    invoke(stack["metadata"], lambda_context, event)
    image_id = media_id(UPLOADS, key)
    assert aws.media_item(image_id)["status"] == "READY"
    return image_id, etag, event


def renditions_of(aws, image_id: str) -> list[str]:
    listed = aws.s3.list_objects_v2(Bucket=RENDITIONS, Prefix=f"{image_id}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def announced(aws, notifier, lambda_context) -> list[dict]:
    """Every change of the media table so far, through the notifier: the messages published."""
    arn = aws.dynamodb.describe_table(TableName=MEDIA_TABLE)["Table"]["LatestStreamArn"]
    # botocore's account-based endpoint (<account>.streams-ddb...) is not one moto intercepts
    client = boto3.client(
        "dynamodbstreams",
        region_name=REGION,
        endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com",
    )
    records = []
    for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += client.get_records(ShardIterator=iterator)["Records"]
    for record in records:
        record["eventSourceARN"] = arn
    assert notifier.lambda_handler({"Records": records}, lambda_context) == {
        "batchItemFailures": []
    }
    messages = [json.loads(m["Body"]) for m in aws.notifications()]
    for body in messages:
        Draft202012Validator(SCHEMA).validate(body)
    return messages


def types(messages: list[dict], image_id: str) -> list[str]:
    return [m["type"] for m in messages if m["image"]["id"] == image_id]


# -- delete -----------------------------------------------------------------------------------


def test_delete_through_the_api_removes_everything_and_announces_once(aws, stack, lambda_context):
    image_id, _, _ = ready_image(aws, stack, lambda_context)
    assert len(renditions_of(aws, image_id)) == 3

    # WHEN the app deletes the image, twice
    status, _, body = request(stack["api"], lambda_context, "DELETE", f"/images/{image_id}")
    assert (status, body) == (204, None)
    status, _, _ = request(stack["api"], lambda_context, "DELETE", f"/images/{image_id}")
    assert status == 204

    # THEN the original and the renditions are gone, the item is DELETED and expires
    assert aws.s3.list_objects_v2(Bucket=UPLOADS).get("KeyCount") == 0
    assert renditions_of(aws, image_id) == []
    item = aws.media_item(image_id)
    assert item["status"] == "DELETED"
    assert item["expires_at"] > time.time() + 24 * 3600  # a TTL (epoch seconds), days away
    assert "pending" not in item

    # AND GET answers 404 with the time of deletion
    status, _, body = request(stack["api"], lambda_context, "GET", f"/images/{image_id}")
    assert (status, body["code"], body["deleted_at"]) == (404, "deleted", item["deleted_at"])

    # AND S3's own event of that delete, arriving later, changes nothing but its sequencer
    invoke(
        stack["thumbnail"],
        lambda_context,
        s3_deleted_event(bucket=UPLOADS, key=KEY, sequencer=LATER),
    )
    assert aws.media_item(image_id)["status"] == "DELETED"
    assert aws.media_item(image_id)["deleted_sequencer"].endswith(LATER)

    # AND subscribers got exactly one image.deleted (after the image.ready)
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, image_id) == ["image.ready", "image.deleted"]
    deleted = messages[-1]
    assert deleted["occurred_at"] == item["deleted_at"]
    assert deleted["image"]["status"] == "DELETED"


def test_deleting_an_unknown_image_is_a_404(stack, lambda_context):
    for image_id in ("a" * 26, "not-an-id"):
        status, _, body = request(stack["api"], lambda_context, "DELETE", f"/images/{image_id}")
        assert (status, body["code"]) == (404, "not_found")


def test_deleting_the_original_in_s3_deletes_the_image(aws, stack, lambda_context):
    image_id, _, _ = ready_image(aws, stack, lambda_context)

    aws.s3.delete_object(Bucket=UPLOADS, Key=KEY)
    event = s3_deleted_event(bucket=UPLOADS, key=KEY, sequencer=LATER)
    assert invoke(stack["thumbnail"], lambda_context, event) == {"batchItemFailures": []}
    invoke(stack["thumbnail"], lambda_context, event)  # delivered twice

    assert aws.media_item(image_id)["status"] == "DELETED"
    assert renditions_of(aws, image_id) == []
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, image_id) == ["image.ready", "image.deleted"]


def test_an_s3_delete_event_while_the_key_holds_an_object_changes_nothing(
    aws, stack, lambda_context
):
    # A noncurrent version expired, or the key was written again after the delete.
    image_id, _, _ = ready_image(aws, stack, lambda_context)
    event = s3_deleted_event(bucket=UPLOADS, key=KEY, sequencer=LATER)

    invoke(stack["thumbnail"], lambda_context, event)

    assert aws.media_item(image_id)["status"] == "READY"
    assert len(renditions_of(aws, image_id)) == 3


def test_a_delete_while_renditions_are_being_written_leaves_none_behind(aws, stack, lambda_context):
    # GIVEN the metadata half is in, and the thumbnail worker is writing its renditions
    etag = aws.put_upload(KEY, PHOTO)
    event = s3_event(bucket=UPLOADS, key=KEY, etag=etag, size=len(PHOTO), sequencer=FIRST)
    invoke(stack["metadata"], lambda_context, event)
    image_id = media_id(UPLOADS, KEY)
    work = stack["thumbnail"].worker._work
    store = work.store

    def store_then_the_app_deletes(*args, **kwargs):
        stored = store(*args, **kwargs)
        assert len(renditions_of(aws, image_id)) == 3
        status, _, _ = request(stack["api"], lambda_context, "DELETE", f"/images/{image_id}")
        assert status == 204
        return stored

    work.store = store_then_the_app_deletes

    # WHEN the worker finishes after the delete
    assert invoke(stack["thumbnail"], lambda_context, event) == {"batchItemFailures": []}

    # THEN it removed what it wrote, and the image stays deleted, never announced READY
    assert renditions_of(aws, image_id) == []
    assert aws.media_item(image_id)["status"] == "DELETED"
    assert "renditions" not in aws.media_item(image_id)
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, image_id) == ["image.deleted"]


def test_a_late_upload_event_does_not_bring_a_deleted_image_back(
    aws, stack, load_handler, lambda_context
):
    # GIVEN an upload requested through the API, and deleted before its object arrived
    status, _, created = request(
        stack["api"],
        lambda_context,
        "POST",
        "/uploads",
        {"filename": "cat.jpg", "content_type": "image/jpeg", "size": len(PHOTO)},
    )
    assert status == 201
    image_id, key = created["image_id"], created["upload"]["fields"]["key"]
    assert request(stack["api"], lambda_context, "DELETE", f"/images/{image_id}")[0] == 204

    # WHEN the object is uploaded with the presigned POST anyway, and its event arrives
    etag = aws.put_upload(key, PHOTO)
    event = s3_event(bucket=UPLOADS, key=key, etag=etag, size=len(PHOTO), sequencer=FIRST)
    invoke(stack["thumbnail"], lambda_context, event)
    invoke(stack["metadata"], lambda_context, event)

    # THEN nothing is made and the image stays deleted
    assert aws.media_item(image_id)["status"] == "DELETED"
    assert renditions_of(aws, image_id) == []

    # AND the reconciler takes it neither for stuck nor for an orphan (its object is there)
    report = load_handler("reconciler").lambda_handler(
        {"sweeps": ["dead_letters", "stuck", "orphans"], "stuck_after_seconds": 0},
        lambda_context,
    )
    assert image_id not in json.dumps(report["images"]), report
    assert report["examined"].get("objects") == 1
    assert "Messages" not in aws.sqs.receive_message(QueueUrl=os.environ["THUMBNAIL_QUEUE_URL"])
    assert types(announced(aws, stack["notifier"], lambda_context), image_id) == ["image.deleted"]


def test_new_content_uploaded_after_an_s3_delete_is_a_new_image_version(aws, stack, lambda_context):
    image_id, _, _ = ready_image(aws, stack, lambda_context)
    aws.s3.delete_object(Bucket=UPLOADS, Key=KEY)
    invoke(
        stack["thumbnail"],
        lambda_context,
        s3_deleted_event(bucket=UPLOADS, key=KEY, sequencer="0055AED6DCD90281E8"),
    )
    assert aws.media_item(image_id)["status"] == "DELETED"

    # An event of the deleted version, redelivered, is refused; a newer upload is taken.
    etag = aws.put_upload(KEY, PHOTO + b"\0")
    old = s3_event(bucket=UPLOADS, key=KEY, etag=etag, size=len(PHOTO) + 1, sequencer=FIRST)
    invoke(stack["thumbnail"], lambda_context, old)
    assert aws.media_item(image_id)["status"] == "DELETED"
    new = s3_event(bucket=UPLOADS, key=KEY, etag=etag, size=len(PHOTO) + 1, sequencer=LATER)
    invoke(stack["thumbnail"], lambda_context, new)
    invoke(stack["metadata"], lambda_context, new)

    item = aws.media_item(image_id)
    assert (item["status"], item["etag"]) == ("READY", etag)
    assert "deleted_at" not in item
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, image_id) == ["image.ready", "image.deleted", "image.ready"]


# -- reprocess --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsChanged:
    image_id: str
    etag: str
    before: dict  # the media item as the first settings made it
    thumbnail: ModuleType  # the thumbnail handler, started afresh with NEW_MEDIUM


@pytest.fixture
def settings_changed(aws, stack, load_handler, lambda_context, monkeypatch) -> SettingsChanged:
    """GIVEN an image made READY, then the medium rendition redefined (a deployment with new
    settings: the thumbnail function starts again with them)."""
    image_id, etag, _ = ready_image(aws, stack, lambda_context)
    before = aws.media_item(image_id)
    for name, value in NEW_MEDIUM.items():
        monkeypatch.setenv(name, value)
    return SettingsChanged(image_id, etag, before, load_handler("thumbnail"))


def test_new_renditions_settings_rewrite_only_the_changed_renditions_once(
    aws, stack, settings_changed, lambda_context
):
    changed = settings_changed
    image_id, before, thumbnail = changed.image_id, changed.before, changed.thumbnail
    puts = count_calls(thumbnail.s3, "PutObject")

    # WHEN the reprocess job (the upload's event, as the reconciler sends it) comes, twice
    job = job_event(
        bucket=UPLOADS,
        key=KEY,
        etag=changed.etag,
        size=len(PHOTO),
        sequencer=before["sequencer"],
        version_id=None,
    )
    assert invoke(thumbnail, lambda_context, job) == {"batchItemFailures": []}
    assert invoke(thumbnail, lambda_context, job) == {"batchItemFailures": []}

    # THEN only the medium rendition was written, once; the old one is retired
    assert [p["Key"].rsplit("/", 1)[1].split("-")[0] for p in puts] == ["medium"]
    after = aws.media_item(image_id)
    assert after["status"] == "READY"
    assert after["renditions_settings"] != before["renditions_settings"]
    assert after["renditions"]["large"] == before["renditions"]["large"]
    assert after["renditions"]["small"] == before["renditions"]["small"]
    assert (after["renditions"]["medium"]["width"], after["renditions"]["medium"]["height"]) == (
        400,
        267,
    )
    assert renditions_of(aws, image_id) == sorted(r["key"] for r in after["renditions"].values())

    # AND subscribers got one image.updated with the new renditions
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, image_id) == ["image.ready", "image.updated"]
    assert messages[-1]["image"]["renditions"]["medium"]["width"] == 400
    assert messages[-1]["image"]["renditions_settings"] == after["renditions_settings"]


# -- list -------------------------------------------------------------------------------------


def create(stack, lambda_context, name: str, key: str) -> str:
    status, _, body = request(
        stack["api"],
        lambda_context,
        "POST",
        "/uploads",
        {"filename": name, "content_type": "image/png", "size": 10},
        key=key,
    )
    assert status == 201
    return body["image_id"]


def test_the_list_pages_through_an_apps_own_images_newest_first(stack, lambda_context):
    mine = [create(stack, lambda_context, f"{n}.png", "k1") for n in range(5)]
    theirs = create(stack, lambda_context, "other.png", "k2")
    request(stack["api"], lambda_context, "DELETE", f"/images/{mine[0]}")

    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, _, page = request(stack["api"], lambda_context, "GET", "/images", query=query)
        assert status == 200
        assert len(page["images"]) <= 2
        seen += page["images"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages >= 2
    assert sorted(i["image_id"] for i in seen) == sorted(mine[1:])  # not deleted, not theirs
    stamps = [i["created_at"] for i in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert {i["status"] for i in seen} == {"AWAITING_UPLOAD"}

    _, _, deleted = request(
        stack["api"], lambda_context, "GET", "/images", query={"status": "DELETED"}
    )
    assert [i["image_id"] for i in deleted["images"]] == [mine[0]]
    _, _, other = request(stack["api"], lambda_context, "GET", "/images", key="k2")
    assert [i["image_id"] for i in other["images"]] == [theirs]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "two"}, "limit"),
        ({"status": "GONE"}, "status"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"colour": "red"}, "colour"),
        ({"status": ""}, "status"),
        ({"limit": ""}, "limit"),
        ({"cursor": ""}, "cursor"),
    ],
)
def test_bad_list_parameters_are_a_400_naming_the_parameter(stack, lambda_context, query, field):
    status, _, body = request(stack["api"], lambda_context, "GET", "/images", query=query)
    assert (status, body["code"], body["field"]) == (400, "invalid_field", field)


def test_an_empty_cursor_is_refused_not_taken_for_the_first_page(stack, lambda_context):
    # A client that turns a null next_cursor into "" must stop, not start over forever.
    create(stack, lambda_context, "a.png", "k1")
    status, _, body = request(
        stack["api"], lambda_context, "GET", "/images", query={"limit": "1", "cursor": ""}
    )
    assert (status, body["field"]) == (400, "cursor")
    assert "omit cursor for the first page" in body["message"]


def test_a_cursor_of_another_key_is_refused(stack, lambda_context):
    for n in range(3):
        create(stack, lambda_context, f"{n}.png", "k1")
    _, _, page = request(stack["api"], lambda_context, "GET", "/images", query={"limit": "1"})
    status, _, body = request(
        stack["api"],
        lambda_context,
        "GET",
        "/images",
        query={"cursor": page["next_cursor"]},
        key="k2",
    )
    assert (status, body["field"]) == (400, "cursor")


def test_reprocess_enqueues_exactly_the_images_made_with_other_settings(
    aws, stack, lambda_context, monkeypatch
):
    image_id, etag, _ = ready_image(aws, stack, lambda_context)
    ready_image(aws, stack, lambda_context, key="uploads/b/other.jpg")
    queue_url = os.environ["THUMBNAIL_QUEUE_URL"]
    current = aws.media_item(image_id)["renditions_settings"]
    assert current == reprocess.current_settings({})  # the worker's defaults

    # Made with the current settings: nothing to do.
    run = reprocess.reprocess(
        dynamodb=aws.dynamodb, sqs=aws.sqs, table=MEDIA_TABLE, queue_url=queue_url, settings=current
    )
    assert (run.scanned, run.images) == (2, [])

    # Other settings: both, nothing sent in a dry run, one job each otherwise.
    other = reprocess.current_settings(NEW_MEDIUM)
    seen: list[int] = []
    dry = reprocess.reprocess(
        dynamodb=aws.dynamodb,
        sqs=aws.sqs,
        table=MEDIA_TABLE,
        queue_url=queue_url,
        settings=other,
        dry_run=True,
        progress=lambda r: seen.append(len(r.images)),
    )
    assert len(dry.images) == 2
    assert seen[-1] == 2
    assert "Messages" not in aws.sqs.receive_message(QueueUrl=queue_url)
    real = reprocess.reprocess(
        dynamodb=aws.dynamodb, sqs=aws.sqs, table=MEDIA_TABLE, queue_url=queue_url, settings=other
    )
    assert real.to_dict()["enqueued"] == 2
    messages = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    jobs = {parse_object_created(m["Body"]).raw_key: m["Body"] for m in messages}
    assert set(jobs) == {KEY, "uploads/b/other.jpg"}
    job = parse_object_created(jobs[KEY])
    assert (job.etag, job.sequencer) == (etag, aws.media_item(image_id)["sequencer"])


def reprocess_with(aws, thumbnail, lambda_context, environment: dict[str, str]) -> list[str]:
    """Run a reprocess for these settings and deliver its jobs to the thumbnail handler."""
    queue_url = os.environ["THUMBNAIL_QUEUE_URL"]
    run = reprocess.reprocess(
        dynamodb=aws.dynamodb,
        sqs=aws.sqs,
        table=MEDIA_TABLE,
        queue_url=queue_url,
        settings=reprocess.current_settings(environment),
    )
    messages = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    )
    for message in messages:
        assert invoke(thumbnail, lambda_context, json.loads(message["Body"])) == {
            "batchItemFailures": []
        }
        aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return run.images


def test_settings_changed_and_changed_back_are_reprocessed_both_times(
    aws, stack, settings_changed, load_handler, lambda_context, monkeypatch
):
    changed = settings_changed
    image_id, original = changed.image_id, changed.before
    assert reprocess_with(aws, changed.thumbnail, lambda_context, NEW_MEDIUM) == [image_id]
    assert aws.media_item(image_id)["renditions"]["medium"]["width"] == 400

    # Back to the settings the image was first made with: a new run is new work.
    monkeypatch.delenv("RENDITIONS")
    assert reprocess_with(aws, load_handler("thumbnail"), lambda_context, {}) == [image_id]
    back = aws.media_item(image_id)
    assert back["renditions_settings"] == original["renditions_settings"]
    assert back["renditions"]["medium"]["key"] == original["renditions"]["medium"]["key"]
    assert renditions_of(aws, image_id) == sorted(r["key"] for r in back["renditions"].values())
    assert reprocess_with(aws, load_handler("thumbnail"), lambda_context, {}) == []
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, image_id) == ["image.ready", "image.updated", "image.updated"]


def test_with_one_constant_sequencer_s3_decides_deletes_and_uploads_after_them(
    aws, stack, lambda_context
):
    # LocalStack puts one sequencer in every S3 event: the delete and the upload after it carry
    # the upload's own. S3 itself (is the key empty? is this ETag there?) orders them.
    image_id, _, _ = ready_image(aws, stack, lambda_context)
    aws.s3.delete_object(Bucket=UPLOADS, Key=KEY)
    invoke(
        stack["thumbnail"],
        lambda_context,
        s3_deleted_event(bucket=UPLOADS, key=KEY, sequencer=FIRST),
    )
    assert aws.media_item(image_id)["status"] == "DELETED"
    assert renditions_of(aws, image_id) == []

    etag = aws.put_upload(KEY, PHOTO + b"\0")
    again = s3_event(bucket=UPLOADS, key=KEY, etag=etag, size=len(PHOTO) + 1, sequencer=FIRST)
    invoke(stack["thumbnail"], lambda_context, again)
    invoke(stack["metadata"], lambda_context, again)

    item = aws.media_item(image_id)
    assert (item["status"], item["etag"]) == ("READY", etag)
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, image_id) == ["image.ready", "image.deleted", "image.ready"]


def test_with_one_constant_sequencer_an_event_of_the_deleted_content_stays_deleted(
    aws, stack, lambda_context
):
    image_id, _, event = ready_image(aws, stack, lambda_context)
    aws.s3.delete_object(Bucket=UPLOADS, Key=KEY)
    invoke(
        stack["thumbnail"],
        lambda_context,
        s3_deleted_event(bucket=UPLOADS, key=KEY, sequencer=FIRST),
    )

    invoke(stack["metadata"], lambda_context, event)  # the deleted upload's event, redelivered

    assert aws.media_item(image_id)["status"] == "DELETED"
