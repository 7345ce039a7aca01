"""Duplicates within an app, handler by handler against moto (in process): the band index the
renditions worker writes and looks up, what the record, the event and ``GET /images`` say,
the races, the reject policy, and a delete's clean-up (``duplicates_index``,
``pipeline/duplicates.py``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from boto3.dynamodb.conditions import Key
from jsonschema import Draft202012Validator
from media_pipeline import dynamo, notifications
from media_pipeline.duplicates_index import DuplicatesIndex, band_key, closest, link_key
from media_pipeline.imaging import duplicates
from media_pipeline.media_store import MediaTable
from media_pipeline.model import Half, media_id
from PIL import Image

from tests.integration.conftest import DUPLICATES_TABLE, MEDIA_TABLE, UPLOADS
from tests.integration.test_api import request, valid
from tests.integration.test_workers import event_for, invoke

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
PHOTO = (SAMPLES / "landscape-exif-rotated.jpg").read_bytes()
OTHER = (SAMPLES / "portrait-exif-rotated.jpg").read_bytes()
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "media-event.v1.json").read_text())


def copy_of(data: bytes, scale: float = 0.5, quality: int = 70) -> bytes:
    """The same picture resized and re-encoded (EXIF and all other metadata dropped: the
    orientation baked into the pixels, as an app that re-saves a photo does)."""
    from PIL import ImageOps  # noqa: PLC0415

    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    size = (round(upright.width * scale), round(upright.height * scale))
    out = io.BytesIO()
    upright.resize(size, Image.Resampling.LANCZOS).save(out, "JPEG", quality=quality)
    return out.getvalue()


def blank() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 200, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def stack(aws, load_handler, monkeypatch):
    monkeypatch.setenv("UPLOAD_PREFIX", "uploads/")
    return {name: load_handler(name) for name in ("thumbnail", "metadata", "api")}


def requested(stack, lambda_context, data: bytes, app: str = "k1") -> tuple[str, str]:
    """An upload requested through the API by ``app``: the image id and its key."""
    status, _, created = request(
        stack["api"], lambda_context, "POST", "/uploads", body=valid(size=len(data)), key=app
    )
    assert status == 201
    return created["image_id"], created["upload"]["fields"]["key"]


def processed(aws, stack, lambda_context, key: str, data: bytes, *halves: str) -> dict:
    """The object uploaded and its event given to ``halves`` (both by default); the item."""
    etag = aws.put_upload(key, data)
    event = event_for(aws, key, etag)
    for half in halves or ("thumbnail", "metadata"):
        assert invoke(stack[half], lambda_context, event) == {"batchItemFailures": []}
    return aws.media_item(media_id(UPLOADS, key))


def uploaded(aws, stack, lambda_context, data: bytes, app: str = "k1") -> dict:
    """GIVEN an image of ``app`` through the API and both workers: its item."""
    _, key = requested(stack, lambda_context, data, app)
    return processed(aws, stack, lambda_context, key, data)


def entries(aws, key: str) -> list[str]:
    """The image ids under one key of the duplicates table."""
    response = aws.dynamodb.query(
        TableName=DUPLICATES_TABLE, **dynamo.key_condition(Key("key").eq(key))
    )
    return sorted(item["image_id"]["S"] for item in response["Items"])


def table_size(aws) -> int:
    return len(aws.dynamodb.scan(TableName=DUPLICATES_TABLE)["Items"])


def listed(stack, lambda_context, original: str, app: str = "k1", **query) -> list[str]:
    status, _, page = request(
        stack["api"],
        lambda_context,
        "GET",
        "/images",
        query={"duplicate_of": original, **query},
        key=app,
    )
    assert status == 200, page
    return [image["image_id"] for image in page["images"]]


def test_a_resized_reencoded_copy_names_its_original_everywhere(aws, stack, lambda_context):
    # GIVEN an app's photo, READY
    original = uploaded(aws, stack, lambda_context, PHOTO)
    assert original["duplicate_of"] is None
    bands = original["hash_bands"]
    assert len(bands) == 12
    assert bands == list(duplicates.bands(original["perceptual_hash"]))
    for band in bands:  # its 12 band items, the full hash projected
        assert entries(aws, band_key("k1", band)) == [original["id"]]

    # WHEN the app uploads the same photo again, half the size, recompressed, EXIF gone
    copy = uploaded(aws, stack, lambda_context, copy_of(PHOTO))

    # THEN its record names the original, with the distance
    assert copy["status"] == "READY"
    found = copy["duplicate_of"]
    assert found["image_id"] == original["id"]
    assert found["distance"] == duplicates.distance(
        original["perceptual_hash"], copy["perceptual_hash"]
    )
    assert found["distance"] <= duplicates.THRESHOLD
    assert aws.media_item(original["id"])["duplicate_of"] is None  # the original names nothing
    # its image.ready does too (schema-valid); GET /images/{id} and the list filter agree
    event = notifications.transition(None, copy).body
    assert event["type"] == "image.ready"
    assert event["image"]["duplicate_of"] == found
    Draft202012Validator(SCHEMA).validate(event)
    status, _, view = request(stack["api"], lambda_context, "GET", f"/images/{copy['id']}")
    assert (status, view["duplicate_of"]) == (200, found)
    assert listed(stack, lambda_context, original["id"]) == [copy["id"]]
    assert listed(stack, lambda_context, copy["id"]) == []
    assert entries(aws, link_key("k1", original["id"])) == [copy["id"]]


def test_a_different_picture_another_apps_copy_and_a_blank_are_no_duplicates(
    aws, stack, lambda_context
):
    original = uploaded(aws, stack, lambda_context, PHOTO)
    other = uploaded(aws, stack, lambda_context, OTHER)
    elsewhere = uploaded(aws, stack, lambda_context, copy_of(PHOTO), app="k2")
    flat = uploaded(aws, stack, lambda_context, blank())
    flat_again = uploaded(aws, stack, lambda_context, blank())

    assert other["duplicate_of"] is None
    assert elsewhere["duplicate_of"] is None  # duplicates are within an app
    # a picture without detail has the flat hash and is never indexed (no key every blank
    # upload would share), so it names nothing either
    assert flat["perceptual_hash"] == duplicates.FLAT_HASH
    assert flat["hash_bands"] == []
    assert flat_again["duplicate_of"] is None
    assert table_size(aws) == 3 * 12
    assert listed(stack, lambda_context, original["id"]) == []


def test_two_copies_agree_on_the_original_whichever_is_looked_up_first(aws, stack, lambda_context):
    # GIVEN two copies requested one after the other (the first is the original) ...
    first_id, first_key = requested(stack, lambda_context, PHOTO)
    second_data = copy_of(PHOTO, 0.6, 80)
    second_id, second_key = requested(stack, lambda_context, second_data)
    # ... WHEN the later one is processed first (it sees no original: it names none) ...
    second = processed(aws, stack, lambda_context, second_key, second_data)
    assert second["duplicate_of"] is None
    # ... and then the earlier one, which sees it
    first = processed(aws, stack, lambda_context, first_key, PHOTO)

    # THEN the earlier one is the original, and the later one names it
    assert first["duplicate_of"] is None
    assert aws.media_item(second_id)["duplicate_of"]["image_id"] == first_id
    assert listed(stack, lambda_context, first_id) == [second_id]


def test_the_lookup_is_deterministic_closest_then_earliest():
    hash_ = "f" * 32

    def apart(bits: int) -> str:
        return f"{(int(hash_, 16) >> bits) << bits:032x}"  # the lowest `bits` bits cleared

    candidates = {
        "b" * 26: (apart(3), "2026-12-05T10:00:00.002Z"),
        "a" * 26: (apart(3), "2026-12-05T10:00:00.002Z"),  # same distance, same time: by id
        "c" * 26: (apart(5), "2026-12-05T10:00:00.001Z"),  # earlier, but farther
        "d" * 26: (apart(1), "2026-12-05T10:00:00.009Z"),  # closest, but created later
        "e" * 26: (apart(30), "2026-12-05T10:00:00.000Z"),  # beyond the threshold
    }
    compare = {"distance": duplicates.distance, "threshold": duplicates.THRESHOLD}
    me = ("z" * 26, "2026-12-05T10:00:00.005Z")
    for ordered in (candidates, dict(reversed(candidates.items()))):
        found = closest(*me, hash_, ordered, **compare)
        assert (found.image_id, found.distance) == ("a" * 26, 3)
    # the earliest within the threshold names none: the others were created after it
    assert closest("c" * 26, "2026-12-05T10:00:00.001Z", hash_, candidates, **compare) is None


def test_a_redelivered_job_writes_the_same_items_and_finds_the_same_original(
    aws, stack, lambda_context
):
    original = uploaded(aws, stack, lambda_context, PHOTO)
    _, key = requested(stack, lambda_context, copy_of(PHOTO))
    data = copy_of(PHOTO)
    etag = aws.put_upload(key, data)
    event = event_for(aws, key, etag)
    invoke(stack["thumbnail"], lambda_context, event)
    size = table_size(aws)
    invoke(stack["thumbnail"], lambda_context, event, receive_count=2)  # a redelivery
    invoke(stack["metadata"], lambda_context, event)
    copy = aws.media_item(media_id(UPLOADS, key))
    assert copy["status"] == "READY"
    assert copy["duplicate_of"]["image_id"] == original["id"]
    assert table_size(aws) == size == 2 * 12 + 1


def test_deleting_the_original_leaves_no_reference_and_a_copy_its_own_items(
    aws, stack, lambda_context
):
    # GIVEN an original and two copies of it (the same bytes again: as close to each other as to
    # the original, so each names the earliest, the original)
    original = uploaded(aws, stack, lambda_context, PHOTO)
    copies = [uploaded(aws, stack, lambda_context, PHOTO) for _ in range(2)]
    assert all(c["duplicate_of"] == {"image_id": original["id"], "distance": 0} for c in copies)
    assert table_size(aws) == 3 * 12 + 2

    # WHEN a copy is deleted: its band items and its link go
    status, _, _ = request(stack["api"], lambda_context, "DELETE", f"/images/{copies[0]['id']}")
    assert status == 204
    assert table_size(aws) == 2 * 12 + 1
    assert listed(stack, lambda_context, original["id"]) == [copies[1]["id"]]

    # WHEN the original is deleted: its items and links go, and the copy names it no more
    status, _, _ = request(stack["api"], lambda_context, "DELETE", f"/images/{original['id']}")
    assert status == 204
    assert table_size(aws) == 12
    kept = aws.media_item(copies[1]["id"])
    assert kept["status"] == "READY"
    assert "duplicate_of" not in kept
    status, _, view = request(stack["api"], lambda_context, "GET", f"/images/{kept['id']}")
    assert view["duplicate_of"] is None
    assert listed(stack, lambda_context, original["id"]) == []
    # and a delete repeated does it all again, harmlessly
    status, _, _ = request(stack["api"], lambda_context, "DELETE", f"/images/{original['id']}")
    assert status == 204
    assert table_size(aws) == 12


def test_an_original_deleted_while_its_copy_is_recorded_is_not_named(
    aws, stack, lambda_context, monkeypatch
):
    original = uploaded(aws, stack, lambda_context, PHOTO)
    _, key = requested(stack, lambda_context, copy_of(PHOTO))
    table = MediaTable(aws.dynamodb, MEDIA_TABLE)
    record = MediaTable.record

    def deleted_meanwhile(self, *args, **kwargs):  # the original's delete, between the copy's
        recorded = record(self, *args, **kwargs)  # lookup and the check after its record
        if args[1] is Half.RENDITIONS:
            request(stack["api"], lambda_context, "DELETE", f"/images/{original['id']}")
        return recorded

    monkeypatch.setattr(MediaTable, "record", deleted_meanwhile)
    copy = processed(aws, stack, lambda_context, key, copy_of(PHOTO))
    assert copy["status"] == "READY"
    assert "duplicate_of" not in copy or copy["duplicate_of"] is None
    assert entries(aws, link_key("k1", original["id"])) == []
    assert table.get(original["id"])["status"] == "DELETED"


def test_the_reject_policy_fails_a_copy_naming_its_original(
    aws, stack, lambda_context, load_handler, monkeypatch
):
    monkeypatch.setenv("DUPLICATES_POLICY", "reject")
    stack["thumbnail"] = load_handler("thumbnail")
    original = uploaded(aws, stack, lambda_context, PHOTO)
    assert original["status"] == "READY"

    copy = uploaded(aws, stack, lambda_context, copy_of(PHOTO))

    assert copy["status"] == "FAILED"
    failure = copy["failure"]
    assert (failure["stage"], failure["reason"], failure["retryable"]) == (
        "thumbnail",
        "duplicate",
        False,
    )
    assert failure["duplicate_of"]["image_id"] == original["id"]
    assert original["id"] in failure["message"]
    assert not copy.get("renditions")  # nothing rendered was kept
    assert table_size(aws) == 12  # a refused copy is nobody's original
    event = notifications.transition(None, copy).body
    assert event["failure"]["duplicate_of"] == failure["duplicate_of"]
    Draft202012Validator(SCHEMA).validate(event)
    _, _, view = request(stack["api"], lambda_context, "GET", f"/images/{copy['id']}")
    assert view["failure"]["reason"] == "duplicate"
    assert view["failure"]["duplicate_of"]["image_id"] == original["id"]


def test_the_off_policy_stores_the_hash_and_indexes_nothing(
    aws, stack, lambda_context, load_handler, monkeypatch
):
    monkeypatch.setenv("DUPLICATES_POLICY", "off")
    stack["thumbnail"] = load_handler("thumbnail")
    uploaded(aws, stack, lambda_context, PHOTO)
    copy = uploaded(aws, stack, lambda_context, copy_of(PHOTO))
    assert copy["status"] == "READY"
    assert copy["duplicate_of"] is None
    assert len(copy["perceptual_hash"]) == 32
    assert table_size(aws) == 0


def test_the_list_of_duplicates_pages_by_id_and_filters(aws, stack, lambda_context):
    original = uploaded(aws, stack, lambda_context, PHOTO)
    copies = sorted(uploaded(aws, stack, lambda_context, PHOTO)["id"] for _ in range(3))
    pages, cursor = [], None
    while True:
        query = {"duplicate_of": original["id"], "limit": "2"}
        if cursor is not None:
            query["cursor"] = cursor
        status, _, page = request(stack["api"], lambda_context, "GET", "/images", query=query)
        assert status == 200
        pages.append([image["image_id"] for image in page["images"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i for page in pages for i in page] == copies
    assert all(len(page) <= 2 for page in pages)
    assert listed(stack, lambda_context, original["id"], status="FAILED") == []
    assert listed(stack, lambda_context, original["id"], app="k2") == []  # another app's view
    status, _, error = request(
        stack["api"], lambda_context, "GET", "/images", query={"duplicate_of": "nope"}
    )
    assert (status, error["field"]) == (400, "duplicate_of")


def test_the_index_is_idempotent_and_reads_no_more_than_its_keys(aws):
    index = DuplicatesIndex(aws.dynamodb, DUPLICATES_TABLE)
    hash_ = "0123456789abcdef" * 2
    bands = duplicates.bands(hash_)
    for _ in range(2):
        index.add("k1", "a" * 26, hash_, bands, "2026-12-05T10:00:00.000Z")
    assert table_size(aws) == 12
    assert index.candidates("k1", bands) == {"a" * 26: (hash_, "2026-12-05T10:00:00.000Z")}
    assert index.candidates("k2", bands) == {}
    index.remove("k1", "a" * 26, bands)
    assert table_size(aws) == 0
