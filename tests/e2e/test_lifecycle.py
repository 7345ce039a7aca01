"""An image's life after READY on the local stack: deleted through the API or in S3, brought up
to date by `make reprocess` after a settings change, and listed page by page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from jsonschema import Draft202012Validator
from tooling.api_client import UploadClient

from tests.e2e.conftest import ON_LOCALSTACK, wait_until
from tests.e2e.test_pipeline import GRACE_SECONDS, upload_and_wait

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PHOTO = (ROOT / "samples" / "landscape-exif-rotated.jpg").read_bytes()
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "media-event.v1.json").read_text())
# medium redefined, the others (the square crop of envs/local.tfvars too) unchanged
NEW_RENDITIONS = "large:1024,medium:400,small:128,square:256:1x1"


@pytest.fixture(scope="module")
def client(request, outputs) -> UploadClient:
    ca_bundle = None if ON_LOCALSTACK else str(request.getfixturevalue("local_stack").ca_bundle)
    return UploadClient(outputs["api_url"], outputs["api_key"], ca_bundle)


def types_of(pipeline, image_id: str) -> list[str]:
    for notification in pipeline.notifications[image_id]:
        Draft202012Validator(SCHEMA).validate(notification.body)
    return [n.body["type"] for n in pipeline.notifications[image_id]]


def renditions_in_bucket(pipeline, outputs, image_id: str) -> list[str]:
    listed = pipeline.s3.list_objects_v2(Bucket=outputs["renditions_bucket"], Prefix=f"{image_id}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def recorded_keys(renditions: dict) -> list[str]:
    """Every object key a renditions record names: the renditions and their alternates."""
    keys = [r["key"] for r in renditions.values()]
    keys += [a["key"] for r in renditions.values() for a in (r.get("alternates") or {}).values()]
    return sorted(keys)


def original_exists(pipeline, outputs, key: str) -> bool:
    try:
        pipeline.s3.head_object(Bucket=outputs["uploads_bucket"], Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def test_delete_through_the_api_removes_original_and_renditions_and_announces_once(
    client, pipeline, outputs
):
    # GIVEN an image uploaded through the API and READY
    created = client.request_upload("photo.jpg", "image/jpeg", len(PHOTO))
    image_id, key = created["image_id"], created["upload"]["fields"]["key"]
    status, text = client.post_file(created["upload"], PHOTO, "photo.jpg")
    assert status == 204, text
    pipeline.wait_for([image_id], timeout=90)
    image = client.image(image_id)
    assert image["status"] == "READY"
    urls = [r["url"] for r in image["renditions"].values()]
    assert all(client.fetch(url)[0] == 200 for url in urls)

    # WHEN the app deletes it (twice: the second is a no-op)
    assert client.call("DELETE", f"/images/{image_id}").status == 204
    assert client.call("DELETE", f"/images/{image_id}").status == 204

    # THEN the original and every rendition are gone, and the URLs handed out stop working
    assert not original_exists(pipeline, outputs, key)
    assert renditions_in_bucket(pipeline, outputs, image_id) == []
    assert all(client.fetch(url)[0] in (403, 404) for url in urls)

    # AND GET answers 404 with the time of deletion
    response = client.call("GET", f"/images/{image_id}")
    assert (response.status, response.body["code"]) == (404, "deleted")
    assert response.body["deleted_at"] == pipeline.item(image_id)["deleted_at"]

    # AND S3's own "Object Deleted" event reached the thumbnail worker, which changed nothing
    item = wait_until(
        lambda: (found := pipeline.item(image_id)) and found.get("deleted_sequencer") and found,
        60,
        "S3's Object Deleted event never reached the thumbnail worker",
    )
    assert item["status"] == "DELETED"

    # AND exactly one image.deleted was published, after the image.ready
    pipeline.wait_for_count(image_id, 2, timeout=60)
    pipeline.drain(GRACE_SECONDS)
    assert types_of(pipeline, image_id) == ["image.ready", "image.deleted"]
    deleted = pipeline.notifications[image_id][-1]
    assert deleted.attributes == {"type": "image.deleted", "content_type": "image/jpeg"}
    assert deleted.body["occurred_at"] == item["deleted_at"]


def test_deleting_an_unknown_image_is_a_404(client):
    response = client.call("DELETE", f"/images/{'a' * 26}")
    assert (response.status, response.body["code"]) == (404, "not_found")


def test_deleting_the_original_in_s3_deletes_the_image(pipeline, outputs):
    # GIVEN an image uploaded straight to S3 and READY
    uploaded, _ = upload_and_wait(pipeline, "landscape-exif-rotated.jpg")
    recorded = pipeline.item(uploaded.id)["renditions"]
    assert len(recorded) == 4  # large, medium, small and the square crop
    assert renditions_in_bucket(pipeline, outputs, uploaded.id) == recorded_keys(recorded)

    # WHEN its original is deleted from the bucket
    pipeline.s3.delete_object(Bucket=outputs["uploads_bucket"], Key=uploaded.key)

    # THEN one image.deleted arrives, the item is DELETED and no rendition is left
    pipeline.wait_for_count(uploaded.id, 2, timeout=90)
    pipeline.drain(GRACE_SECONDS)
    assert types_of(pipeline, uploaded.id) == ["image.ready", "image.deleted"]
    assert pipeline.item(uploaded.id)["status"] == "DELETED"
    assert renditions_in_bucket(pipeline, outputs, uploaded.id) == []


def run_reprocess(local_stack, *args: str) -> dict:
    """`make reprocess ARGS` against this session's stack (make test runs one per xdist worker)."""
    env = {**os.environ, "DEVSTACK_STATE_DIR": str(local_stack.state_dir)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reprocess.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "scanned" in done.stderr  # progress is shown
    return json.loads(done.stdout)


@pytest.fixture
def thumbnail_settings(pipeline, local_stack, outputs):
    """Change the deployed thumbnail function's environment (as `terraform apply` with other
    variables would) and wait until the local runtime runs it; restored afterwards."""
    lambda_client = pipeline.client("lambda")
    function = outputs["functions"]["thumbnail"]
    original = lambda_client.get_function_configuration(FunctionName=function)["Environment"]

    def running_digest() -> str | None:
        status = local_stack.control("status")
        return status["functions"].get(function, {}).get("environment_sha256")

    def apply(variables: dict[str, str]) -> None:
        before = running_digest()
        lambda_client.update_function_configuration(
            FunctionName=function, Environment={"Variables": variables}
        )
        wait_until(
            lambda: running_digest() not in (None, before),
            30,
            "the local runtime never picked up the new configuration",
        )

    yield lambda changes: apply({**original["Variables"], **changes})
    apply(original["Variables"])


def test_reprocess_after_changing_renditions_rewrites_exactly_the_changed_ones_once(
    pipeline, outputs, local_stack, thumbnail_settings
):
    # GIVEN two READY images made with the default renditions
    images = [upload_and_wait(pipeline, "landscape-exif-rotated.jpg")[0] for _ in range(2)]
    ids = [u.id for u in images]
    before = {i: pipeline.item(i) for i in ids}
    assert set(ids).isdisjoint(run_reprocess(local_stack, "--dry-run")["images"])  # made with these

    # WHEN the medium rendition is redefined and `make reprocess` runs
    thumbnail_settings({"RENDITIONS": NEW_RENDITIONS})
    dry = run_reprocess(local_stack, "--dry-run")
    assert set(ids) <= set(dry["images"])
    assert dry["enqueued"] == 0
    first = run_reprocess(local_stack, "--wait", "300")
    assert set(ids) <= set(first["images"])
    assert first["enqueued"] == first["outdated"] == first["up_to_date"]

    # THEN each image got exactly one image.updated with only its medium rendition rewritten
    for image_id in ids:
        pipeline.wait_for_count(image_id, 2, timeout=120)
    pipeline.drain(GRACE_SECONDS)
    for image_id in ids:
        assert types_of(pipeline, image_id) == ["image.ready", "image.updated"]
        old, new = before[image_id]["renditions"], pipeline.item(image_id)["renditions"]
        assert new["large"] == old["large"]
        assert new["small"] == old["small"]
        assert new["medium"]["key"] != old["medium"]["key"]
        assert (new["medium"]["width"], new["medium"]["height"]) == (400, 267)
        updated = pipeline.notifications[image_id][-1].body
        assert updated["image"]["renditions"]["medium"]["width"] == 400
        # the old medium rendition is retired: the bucket holds exactly the current three
        # (and their alternates)
        assert renditions_in_bucket(pipeline, outputs, image_id) == recorded_keys(new)

    # AND a second run finds nothing to do
    second = run_reprocess(local_stack, "--wait", "60")
    assert (second["outdated"], second["enqueued"]) == (0, 0)
    pipeline.drain(GRACE_SECONDS)
    assert all(len(pipeline.notifications[i]) == 2 for i in ids)


def test_the_list_pages_through_the_apps_images_newest_first(client):
    created = [client.request_upload(f"{n}.png", "image/png", 10)["image_id"] for n in range(3)]

    seen, cursor = [], None
    for _ in range(3):  # the newest first: ours, one per page
        query = "?limit=1" + (f"&cursor={cursor}" if cursor else "")
        response = client.call("GET", f"/images{query}")
        assert response.status == 200, response.body
        seen += [i["image_id"] for i in response.body["images"]]
        cursor = response.body["next_cursor"]
        assert cursor
    assert seen == created[::-1]

    response = client.call("GET", "/images?status=AWAITING_UPLOAD&limit=100")
    assert set(created) <= {i["image_id"] for i in response.body["images"]}
    response = client.call("GET", "/images?limit=1000")
    assert (response.status, response.body["field"]) == (400, "limit")


@pytest.mark.skipif(ON_LOCALSTACK, reason="checks a patch of the embedded stack's moto")
def test_a_delete_marker_in_a_versioned_bucket_is_announced_like_s3_does(pipeline):
    # A bucket, rule and queue of this test's own: the pipeline's are left as they are.
    name = f"versioned-probe-{uuid.uuid4().hex[:12]}"
    s3, events, sqs = pipeline.s3, pipeline.client("events"), pipeline.sqs
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Deleted"],
        "detail": {"bucket": {"name": [name]}},
    }
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "probe", "Arn": queue_arn}])
    try:
        s3.put_object(Bucket=name, Key="uploads/a.jpg", Body=b"x")
        marker = s3.delete_object(Bucket=name, Key="uploads/a.jpg")
        assert marker["DeleteMarker"] is True

        messages = wait_until(
            lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"),
            30,
            "no Object Deleted event for a delete marker",
        )
        event = json.loads(messages[0]["Body"])
        assert event["detail-type"] == "Object Deleted"
        assert event["detail"]["object"]["key"] == "uploads/a.jpg"
        assert event["detail"]["object"]["version-id"] == marker["VersionId"]
        assert event["detail"]["object"]["sequencer"]
    finally:
        events.remove_targets(Rule=name, Ids=["probe"])
        events.delete_rule(Name=name)
        sqs.delete_queue(QueueUrl=queue_url)
        versions = s3.list_object_versions(Bucket=name)
        for entry in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=entry["Key"], VersionId=entry["VersionId"])
        s3.delete_bucket(Bucket=name)
