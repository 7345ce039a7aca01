"""make capacity's pure parts: DynamoDB's and S3's billing rules, the usage difference, hot keys,
ceilings and prices (tooling/billing.py, tooling/capacity.py, scripts/capacity.py)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
from tooling import billing, capacity
from tooling.billing import (
    FREE_CLASS,
    GET_CLASS,
    PUT_CLASS,
    IndexSpec,
    TableSpec,
    index_writes,
    item_size,
    number_size,
    read_units,
    s3_request,
    write_cost,
    write_units,
)

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sys.modules.setdefault("load", _script("load_for_capacity", ROOT / "scripts" / "load.py"))
script = _script("capacity_script", ROOT / "scripts" / "capacity.py")

S = lambda text: {"S": text}  # noqa: E731
N = lambda text: {"N": text}  # noqa: E731


# -- item sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("7", 2),  # 1 significant digit: 1 + 1
        ("12", 2),
        ("123", 3),
        ("1000", 2),  # trailing zeros do not count
        ("0.001", 2),  # nor leading ones
        ("-12.50", 3),  # 1, 2, 5
        ("0", 2),
        ("12345678901234567890", 11),
    ],
)
def test_a_number_takes_a_byte_per_two_significant_digits_plus_one(number, size):
    assert number_size(number) == size


def test_an_items_size_is_its_names_plus_its_values():
    item = {
        "id": S("abc"),  # 2 + 3
        "ü": S("é"),  # 2 + 2 (UTF-8)
        "n": N("123"),  # 1 + 3
        "b": {"B": "AAEC"},  # 1 + 3 (base64 of 3 bytes)
        "t": {"BOOL": True},  # 1 + 1
        "z": {"NULL": True},  # 1 + 1
        "l": {"L": [S("ab"), N("1")]},  # 1 + 3 + (2 + 1) + (2 + 1)
        "m": {"M": {"k": S("v")}},  # 1 + 3 + (1 + 1 + 1)
        "ss": {"SS": ["a", "bc"]},  # 2 + 3
    }
    assert item_size(item) == 5 + 4 + 4 + 4 + 2 + 2 + 10 + 7 + 5
    assert item_size(None) == 0


@pytest.mark.parametrize(("size", "units"), [(0, 1), (1, 1), (1024, 1), (1025, 2), (3000, 3)])
def test_a_write_unit_is_a_kilobyte_rounded_up_at_least_one(size, units):
    assert write_units(size) == units


def test_a_read_unit_is_4_kb_rounded_up_and_half_that_when_eventually_consistent():
    assert read_units(0) == 1  # an absent item costs the minimum
    assert read_units(4096) == 1
    assert read_units(4097) == 2
    assert read_units(4097, consistent=False) == 1
    assert read_units(10, consistent=False) == 0.5


# -- write costs -------------------------------------------------------------------------------

BIG = "x" * 1500  # an attribute that makes an item 2 write units


def media(**indexes: IndexSpec) -> TableSpec:
    return TableSpec("media", "id", None, tuple(indexes.values()))


PENDING = IndexSpec("pending", "pending", "updated_at", "ALL")
OWNER_KEYS = IndexSpec("owner", "owner", "created_at", "KEYS_ONLY")
OWNER_INCLUDE = IndexSpec("owner", "owner", "created_at", "INCLUDE", ("status",))


def test_put_and_update_bill_the_larger_item_delete_the_deleted_one():
    table = media()
    small, large = {"id": S("1")}, {"id": S("1"), "big": S(BIG)}
    assert write_cost(None, small, table).table_units == 1
    assert write_cost(large, small, table).table_units == 2  # shrinking: the larger, before
    assert write_cost(small, large, table).table_units == 2
    assert write_cost(large, None, table).table_units == 2  # delete
    assert write_cost(None, None, table).table_units == 1  # delete of nothing: the minimum


def test_a_failed_condition_bills_the_existing_item_and_writes_no_index():
    table = media(pending=PENDING)
    existing = {"id": S("1"), "pending": S("PROCESSING"), "updated_at": S("t"), "big": S(BIG)}
    cost = write_cost(existing, existing, table, failed=True)
    assert (cost.table_units, cost.indexes, cost.failed) == (2, {}, True)
    assert write_cost(None, None, table, failed=True).table_units == 1  # no item: 1


def test_a_transactional_write_costs_twice():
    table = media(pending=PENDING)
    after = {"id": S("1"), "pending": S("P"), "updated_at": S("t")}
    cost = write_cost(None, after, table, transactional=True)
    assert cost.table_units == 2
    assert [w.units for w in cost.indexes["pending"]] == [2]


def item(pending: str | None = None, **more: dict) -> dict:
    found = {"id": S("1"), "updated_at": S("t1"), **more}
    if pending is not None:
        found["pending"] = S(pending)
    return found


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # in the index neither before nor after: nothing
        (item(), item(status=S("READY")), []),
        # enters: one put, sized by the new entry
        (item(), item("PROCESSING"), [("put", "PROCESSING")]),
        # leaves: one delete, sized by the old entry
        (item("PROCESSING"), item(), [("delete", "PROCESSING")]),
        # its index key changes: a delete and a put
        (item("AWAITING"), item("PROCESSING"), [("delete", "AWAITING"), ("put", "PROCESSING")]),
        # the sort key of the index changes: also a delete and a put
        (
            item("P"),
            {**item("P"), "updated_at": S("t2")},
            [("delete", "P"), ("put", "P")],
        ),
        # same key, projected attributes change (ALL projects everything): one write
        (item("P"), item("P", status=S("READY")), [("update", "P")]),
        # nothing changed: nothing
        (item("P"), item("P"), []),
    ],
)
def test_index_writes_follow_the_items_entry(before, after, expected):
    writes = index_writes(before, after, media(pending=PENDING), PENDING)
    assert [(w.kind, w.key) for w in writes] == expected
    assert all(w.units == 1 for w in writes)


def test_an_index_entry_holds_the_keys_and_only_what_it_projects():
    table = media()
    owned = {"id": S("1"), "owner": S("app"), "created_at": S("t"), "status": S("PROCESSING")}
    ready = {**owned, "status": S("READY"), "big": S(BIG)}
    # KEYS_ONLY: a change of any other attribute does not reach the index
    assert index_writes(owned, ready, table, OWNER_KEYS) == []
    # INCLUDE status: the status change does, sized without the unprojected big attribute (the
    # larger of the old and the new entry)
    (write,) = index_writes(owned, ready, table, OWNER_INCLUDE)
    assert (write.kind, write.units) == ("update", 1)
    assert (
        write.size
        == item_size(owned)
        > item_size({k: ready[k] for k in ("id", "owner", "created_at", "status")})
    )
    # ALL: the big attribute too
    (write,) = index_writes(owned, ready, table, IndexSpec("owner", "owner", "created_at"))
    assert write.units == 2


def test_a_table_spec_comes_from_describe_table():
    spec = TableSpec.from_description(
        {
            "TableName": "media",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "owner",
                    "KeySchema": [
                        {"AttributeName": "owner", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]},
                }
            ],
            "StreamSpecification": {"StreamEnabled": True},
        }
    )
    assert spec == TableSpec("media", "id", None, (OWNER_INCLUDE,), stream=True)


def test_storage_counts_each_item_and_entry_with_100_bytes_of_overhead():
    table = media(pending=PENDING)
    stored = billing.stored_bytes(item("P"), table)
    size = item_size(item("P"))
    assert stored == {None: (1, size + 100), "pending": (1, size + 100)}
    assert billing.stored_bytes(item(), table) == {None: (1, item_size(item()) + 100)}


# -- S3 request classes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "operation", "billed"),
    [
        ("PUT", "/b/k/1.jpg", "", {}, "PutObject", PUT_CLASS),
        ("PUT", "/b/k", "", {"x-amz-copy-source": "/b/o"}, "CopyObject", PUT_CLASS),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", {}, "UploadPart", PUT_CLASS),
        ("POST", "/b", "", {}, "PostObject", PUT_CLASS),  # a browser's presigned POST
        ("POST", "/b", "delete", {}, "DeleteObjects", PUT_CLASS),
        ("GET", "/b", "list-type=2&prefix=x/", {}, "ListObjectsV2", PUT_CLASS),
        ("GET", "/b", "", {}, "ListObjects", PUT_CLASS),
        ("GET", "/b", "versions", {}, "ListObjectVersions", PUT_CLASS),
        ("GET", "/b", "policy", {}, "GetBucket:policy", GET_CLASS),
        ("GET", "/b/k", "", {}, "GetObject", GET_CLASS),
        ("HEAD", "/b/k", "", {}, "HeadObject", GET_CLASS),
        ("OPTIONS", "/b/k", "", {}, "Options", GET_CLASS),
        ("DELETE", "/b/k", "", {}, "DeleteObject", FREE_CLASS),
        ("PUT", "/b", "versioning", {}, "PutBucket:versioning", PUT_CLASS),
    ],
)
def test_s3_requests_are_classed_as_s3_bills_them(method, path, query, headers, operation, billed):
    request = s3_request(method, path, query, headers)
    assert (request.operation, request.billing) == (operation, billed)
    assert request.bucket == "b"


def test_a_virtual_host_names_the_bucket():
    request = s3_request("GET", "/some/key", "", {}, host="photos.s3.us-east-1.amazonaws.com")
    assert (request.bucket, request.key, request.operation) == ("photos", "some/key", "GetObject")


# -- the usage difference ----------------------------------------------------------------------


def usage(**parts) -> dict:
    base = {
        "requests": [],
        "s3": {"requests": [], "stored": [], "sequence": 0, "keys": {}},
        "sqs": [],
        "events": {"matched": [], "rules": {}, "targets": {}},
        "dynamodb": {
            "tables": {},
            "capacity": [],
            "index_writes": [],
            "keys": [],
            "storage": [],
            "unmodelled": [],
            "dropped": {},
        },
    }
    for name, value in parts.items():
        if name in base["dynamodb"]:
            base["dynamodb"][name] = value
        else:
            base[name] = value
    return base


def test_the_usage_of_a_run_is_the_difference_of_two_answers():
    request = {"service": "sqs", "operation": "ReceiveMessage", "caller": "f"}
    before = usage(
        requests=[{**request, "count": 3}],
        keys=[{"table": "t", "index": "", "key": "k", "wu": 2.0, "ru": 0.0, "items": {"a": 2}}],
        s3={
            "requests": [],
            "stored": [],
            "sequence": 2,
            "keys": {"b": [[1, "old-1"], [2, "old-2"]]},
        },
    )
    after = usage(
        requests=[{**request, "count": 5}, {**request, "caller": "g", "count": 1}],
        keys=[
            {
                "table": "t",
                "index": "",
                "key": "k",
                "wu": 5.0,
                "ru": 1.0,
                "items": {"a": 2, "b": 1},
            },
            {"table": "t", "index": "", "key": "same", "wu": 0.0, "ru": 0.0, "items": {}},
        ],
        s3={
            "requests": [],
            "stored": [],
            "sequence": 3,
            "keys": {"b": [[2, "old-2"], [3, "new"]]},
        },
    )
    delta = capacity.usage_delta(before, after)
    assert delta["requests"] == [{**request, "count": 2}, {**request, "caller": "g", "count": 1}]
    # a key value: its units since, and the items that wrote to it since
    assert delta["dynamodb"]["keys"] == [
        {"table": "t", "index": "", "key": "k", "wu": 3.0, "ru": 1.0, "items": ["b"]}
    ]
    assert delta["s3"]["keys"] == {"b": ["new"]}


# -- hot keys and the share of a key value ----------------------------------------------------


def test_an_even_spread_over_key_values_takes_one_share_each():
    # 16 shards, 100 images: noise, not a hot shard
    counts = [6, 7, 5, 8, 6, 7, 5, 6, 6, 7, 5, 6, 8, 6, 6, 6]
    share, even = capacity.key_share(counts, [float(c) for c in counts])
    assert (share, even) == (1 / 16, True)


def test_an_uneven_spread_takes_the_observed_largest_share():
    counts = [90, 3, 3, 4]
    share, even = capacity.key_share(counts, [90.0, 3.0, 3.0, 4.0])
    assert not even
    assert share == pytest.approx(0.9)


def key(table: str, index: str, value: str, wu: float, images: list[str]) -> dict:
    return {"table": table, "index": index, "key": value, "wu": wu, "ru": 0.0, "items": images}


def test_hot_keys_tell_per_app_per_deployment_and_per_image_keys():
    price = capacity.load_prices().__getitem__
    keys = [
        # a status index: two values shared by every image
        *[key("media", "pending", v, 200.0, [f"i{n}" for n in range(100)]) for v in ("A", "B")],
        # the app's index: one value holding the API key's id
        key("media", "owner", "key-id-1", 500.0, [f"i{n}" for n in range(100)]),
        # the table itself: one image per key value
        *[key("media", "", f"i{n}", 5.0, [f"i{n}"]) for n in range(100)],
        # a table whose partition keys images share, one item each (the sort key is the
        # image): the duplicates table's bands, each value holding the app's API key id
        *[
            key(
                "dups",
                "",
                f"dup#key-id-1#{b}",
                4.0,
                [f"dup#{b}{billing.KEY_SEPARATOR}i{n}" for n in range(4)],
            )
            for b in range(25)
        ],
    ]
    found = {
        (h["target"], h["scope"]): h for h in capacity._hot_keys(keys, ["key-id-1"], 100, price)
    }
    pending = found[("media/pending", capacity.PER_DEPLOYMENT)]
    assert (pending["values"], pending["even"], pending["share"]) == (2, True, 0.5)
    assert pending["wu_per_upload"] == pytest.approx(2.0)
    assert pending["uploads_per_s"] == pytest.approx(500)  # 1,000 WU/s / 2 WU per upload
    owner = found[("media/owner", capacity.PER_APP)]
    assert owner["key"] == "{API key id}"  # the same in every run, for comparisons
    assert owner["wu_per_upload"] == pytest.approx(5.0)
    assert owner["uploads_per_s"] == pytest.approx(200)
    table = found[("media", "one per image")]
    assert (table["uploads_per_s"], table["wu_per_upload"]) == (None, 5.0)
    bands = found[("dups", capacity.PER_APP)]
    assert (bands["values"], bands["images_on_hottest"], bands["even"]) == (25, 4, True)
    assert bands["wu_per_upload"] == pytest.approx(4.0 / 100)  # 1/25 of the 100 WU
    assert ("dups", "one per image") not in found


# -- the whole model on a small measurement ---------------------------------------------------


def measurement() -> dict:
    """Two images: one function each of api, worker (SQS) and notifier (stream), a scheduled
    one, and the usage their requests left."""
    journal = [
        {"function": "api", "source": "apigateway", "items": [], "duration_ms": 99.2},
        {"function": "api", "source": "apigateway", "items": [], "duration_ms": 100.0},
        {"function": "worker", "source": "aws:sqs", "items": ["m1"], "duration_ms": 499.5,
         "init_ms": 1000.0},
        {"function": "worker", "source": "aws:sqs", "items": ["m2"], "duration_ms": 500.0},
        {"function": "notifier", "source": "aws:dynamodb", "items": ["1", "2", "3", "4"],
         "duration_ms": 200.0},
        {"function": "reconciler", "source": "events", "items": [], "duration_ms": 300.0},
    ]  # fmt: skip
    rows = [
        ("execute-api", "POST /uploads", "capacity-app", 2),
        ("sns", "Publish", "notifier", 2),
        ("dynamodb", "Query", "reconciler", 1),
        ("dynamodbstreams", "GetRecords", "lambda-service", 10),
        ("dynamodb", "ListTables", "terraform", 7),
        ("s3", "PUT", "worker", 6),  # counted by the S3 rows below
    ]
    requests = [{"service": s, "operation": o, "caller": c, "count": n} for s, o, c, n in rows]
    return {
        "label": "test",
        "images": {"uploaded": 2, "notified": 2, "ready": 2, "failed": 0},
        "window_s": 10.0,
        "journal": journal,
        "logs": {"api": {"bytes": 2000}, "worker": {"bytes": 4000}},
        "usage": usage(
            requests=requests,
            s3={
                "requests": [
                    {
                        "bucket": "up",
                        "operation": "PostObject",
                        "class": "put",
                        "caller": "capacity-app",
                        "count": 2,
                    },
                    {
                        "bucket": "up",
                        "operation": "GetObject",
                        "class": "get",
                        "caller": "worker",
                        "count": 2,
                    },
                    {
                        "bucket": "out",
                        "operation": "PutObject",
                        "class": "put",
                        "caller": "worker",
                        "count": 6,
                    },
                ],
                "stored": [
                    {"bucket": "out", "caller": "worker", "measure": "bytes", "value": 2 * 30000}
                ],
                "sequence": 0,
                "keys": {"out": ["a1/x", "b2/x", "c3/x"]},
            },
            sqs=[
                {
                    "queue": "jobs",
                    "operation": "ReceiveMessage",
                    "caller": "lambda-service",
                    "outcome": "messages",
                    "count": 2,
                },
                {
                    "queue": "jobs",
                    "operation": "ReceiveMessage",
                    "caller": "lambda-service",
                    "outcome": "empty",
                    "count": 8,
                },
                {
                    "queue": "jobs",
                    "operation": "DeleteMessageBatch",
                    "caller": "lambda-service",
                    "outcome": "",
                    "count": 2,
                },
                {
                    "queue": "events",
                    "operation": "ReceiveMessage",
                    "caller": "capacity-app",
                    "outcome": "messages",
                    "count": 2,
                },
            ],
            events={
                "matched": [{"source": "aws.s3", "detail_type": "Object Created", "count": 2}],
                "rules": {"r": 2},
                "targets": {"arn:aws:sqs:us-east-1:1:jobs": 2},
            },
            tables={"media": {"hash_key": "id", "range_key": None, "stream": True, "indexes": {}}},
            capacity=[
                {
                    "table": "media",
                    "index": "",
                    "kind": "write",
                    "operation": "UpdateItem",
                    "caller": "worker",
                    "requests": 4,
                    "units": 8.0,
                    "items": 4,
                    "failed": 1,
                },
                {
                    "table": "media",
                    "index": "pending",
                    "kind": "write",
                    "operation": "UpdateItem",
                    "caller": "worker",
                    "units": 4.0,
                    "items": 4,
                },
                {
                    "table": "media",
                    "index": "",
                    "kind": "read",
                    "operation": "GetItem",
                    "caller": "worker",
                    "requests": 2,
                    "units": 1.0,
                    "items": 2,
                    "returned": 2,
                },
            ],
            keys=[
                key("media", "pending", "PROCESSING", 4.0, ["i1", "i2"]),
                key("media", "", "i1", 4.0, ["i1"]),
                key("media", "", "i2", 4.0, ["i2"]),
            ],
            storage=[{"table": "media", "index": "", "measure": "bytes", "value": 2 * 1100}],
        ),
        "deployment": {
            "functions": {},
            "api_key_ids": ["kid"],
            "buckets": {"renditions": "out", "uploads": "up"},
            "app_events_queue": "events",
        },
        "production": {
            "source": "plan of terraform/envs/aws",
            "functions": {
                "api": {"memory": 256, "architecture": "arm64"},
                "worker": {"memory": 1024, "architecture": "arm64", "reserved": 10},
                "notifier": {"memory": 256, "architecture": "arm64"},
                "reconciler": {"memory": 256, "architecture": "arm64"},
            },
            "mappings": [
                {"function": "worker", "kind": "sqs", "batch_size": 1, "maximum_concurrency": 5},
                {
                    "function": "notifier",
                    "kind": "stream",
                    "table": "media",
                    "parallelization_factor": 2,
                    "batch_size": 100,
                },
            ],
            "usage_plans": [
                {"rate": 50, "burst": 100, "quota_limit": 2_592_000, "quota_period": "MONTH"}
            ],
            "schedules": {"reconciler": "rate(5 minutes)"},
        },
    }


@pytest.fixture(scope="module")
def report() -> dict:
    return capacity.model(measurement(), capacity.load_prices())


def test_lambda_bills_rounded_up_milliseconds_plus_init_at_production_memory(report):
    worker = report["lambda"]["worker"]
    assert worker["billed_ms_per_image"] == (500 + 1000 + 500) / 2
    assert worker["gb_s_per_image"] == pytest.approx(2.0 * 1024 / 1024 / 2)
    assert worker["memory_mb"] == 1024
    # scheduled functions are not per image
    assert report["lambda"]["reconciler"]["scheduled"]
    assert report["lambda"]["reconciler"]["invocations_per_image"] == 0


def test_requests_per_image_tell_the_pipeline_from_the_subscriber_and_idle_polling(report):
    rows = {(r["service"], r["operation"]): r for r in report["requests"]["rows"]}
    assert rows[("execute-api", "POST /uploads")]["pipeline"] == 1
    assert rows[("s3", "PutObject")]["pipeline"] == 3
    assert ("s3", "PUT") not in rows  # S3 by its operation, not its method
    receive = rows[("sqs", "ReceiveMessage")]
    assert (receive["pipeline"], receive["subscriber"]) == (1, 1)
    empty = rows[("sqs", "ReceiveMessage (empty)")]
    assert (empty["pipeline"], empty["idle"]) == (0, 4)
    assert rows[("sqs", "SendMessage (EventBridge to its SQS targets)")]["pipeline"] == 1
    assert rows[("dynamodbstreams", "GetRecords")]["note"].startswith("free")
    assert ("dynamodb", "Query") not in rows  # the scheduled reconciler's
    assert report["requests"]["excluded"] == {"terraform": 7}


def test_dynamodb_units_per_image_by_table_and_index(report):
    dynamodb = report["dynamodb"]
    assert dynamodb["wu_per_image"] == {"media": 4.0, "media/pending": 2.0}
    assert dynamodb["total_wu_per_image"] == 6.0
    assert dynamodb["failed_conditions_per_image"] == 0.5
    assert dynamodb["per_table"]["media"]["wu"] == 6.0


def test_ceilings_a_and_b_per_deployment_and_per_app(report):
    rows = {r["limit"]: r for r in report["ceilings"]["rows"]}
    # the worker: 1 invocation x 1.0 s (mean of 1.4995 and 0.5 s) per upload, 5 at most
    worker = rows["SQS mapping maximum concurrency: worker"]
    assert worker["uploads_per_s"] == pytest.approx(5 / ((1.4995 + 0.5) / 2))
    assert rows["reserved concurrency: worker"]["uploads_per_s"] == pytest.approx(10 / 0.99975)
    usage_plan = rows["API usage plan throttle rate (per API key)"]
    assert (usage_plan["scope"], usage_plan["uploads_per_s"]) == (capacity.PER_APP, 50)
    # (a): the lowest, with quotas at their defaults and the settings
    a = report["ceilings"]["a"]
    assert a[capacity.PER_DEPLOYMENT]["limit"] == "SQS mapping maximum concurrency: worker"
    assert a[capacity.PER_APP]["uploads_per_s"] <= a[capacity.PER_DEPLOYMENT]["uploads_per_s"]
    # (b): design keys and hard limits only: the pending index's partition (4 WU / 2 images)
    b = report["ceilings"]["b"][capacity.PER_DEPLOYMENT]
    assert b["kind"] == capacity.DESIGN
    assert b["uploads_per_s"] == pytest.approx(1000 / 2.0)
    # S3's keys spread after their common prefix: reported, not binding
    assert not rows["S3 PUT/COPY/POST/DELETE per prefix: out"]["binds"]


def test_the_stream_check_compares_a_shards_records_with_the_notifiers_pace(report):
    (stream,) = report["ceilings"]["stream"]
    # 2 records per image (4 for 2 images) over 4 WU of the table per image: 500 records/s at
    # 1,000 WU/s
    assert stream["needed_records_per_s"] == pytest.approx(500)
    # factor 2 x 4 records per batch / 0.2 s
    assert stream["capacity_records_per_s"] == pytest.approx(40)
    assert not stream["keeps_up"]


def test_every_cost_line_is_priced_from_the_prices_file(report):
    prices = capacity.load_prices()
    lines = {(c["service"], c["item"]): c for c in report["cost"]["lines"]}
    wru = lines[("DynamoDB", "write request units (tables + indexes)")]
    assert wru["usd_per_million"] == pytest.approx(
        6.0 * prices["dynamodb.write_request_unit"].value
    )
    api = lines[("API Gateway", "REST requests (POST /uploads)")]
    assert api["usd_per_million"] == pytest.approx(3.50)
    gb_s = lines[("Lambda", "worker: 1024 MB arm64")]
    assert gb_s["usd_per_million"] == pytest.approx(1.0 * 0.0000133334 * 1_000_000)
    assert lines[("EventBridge", "S3 events matched")]["unconfirmed"]
    total = sum(c["usd_per_million"] for c in report["cost"]["lines"])
    assert report["cost"]["total_usd_per_million"] == pytest.approx(total)
    shares = sum(v["share"] for v in report["cost"]["by_service"].values())
    assert shares == pytest.approx(1.0)
    assert "eventbridge.s3_event" in report["prices"]["unconfirmed"]
    (fixed,) = report["cost"]["fixed_monthly"]
    assert fixed["runs_per_month"] == 30 * 24 * 12


def test_a_million_views_are_priced_through_the_cdn_and_as_presigned_gets(report):
    # the run wrote 6 renditions of 60,000 bytes in all: 10,000 bytes each, 9.31 GB a million
    views = report["serving"]
    gb = 1_000_000 * 10_000 / 2**30
    assert views["mean_rendition_bytes"] == pytest.approx(10_000)
    assert views["cdn"]["requests"] == pytest.approx(1.00)  # $0.0100 per 10,000 HTTPS
    assert views["cdn"]["transfer"] == pytest.approx(gb * 0.085)
    assert views["cdn"]["origin_gets"] == pytest.approx(50_000 * 0.0004 / 1000)
    assert views["s3_presigned"]["requests"] == pytest.approx(0.40)
    assert views["s3_presigned"]["transfer"] == pytest.approx(gb * 0.09)
    assert views["cdn"]["total"] == pytest.approx(
        sum(views["cdn"][k] for k in views["cdn"] if k != "total")
    )
    assert "### Serving: per million views" in capacity.format_report(report)


def test_the_report_prints_as_markdown_and_compares_with_another(report):
    text = capacity.format_report(report)
    assert "### Ceilings (uploads per second)" in text
    assert "UNCONFIRMED" in text
    comparison = capacity.compare(report, report)
    assert "| WU per image, total | 6.00 | 6.00 | x1.00 |" in comparison


def test_every_price_has_a_value_unit_region_source_date_and_basis():
    prices = capacity.load_prices()
    assert prices.researched
    assert prices.region == "us-east-1"
    for entry in prices.entries.values():
        assert all((entry.unit, entry.source, entry.date)), entry.name
        assert entry.per > 0
        assert entry.basis in ("aws", "secondary", "unconfirmed")
        assert entry.confirmed == (entry.basis != "unconfirmed"), entry.name
        assert math.isfinite(entry.value)


def test_key_spread_after_the_common_prefix():
    assert capacity.spread(["uploads/ab/x", "uploads/cd/y"])["spread"]
    one = capacity.spread(["day/2026/1", "day/2026/2"])
    assert one["common_prefix"] == "day/2026/"
    assert one["spread"]  # "1" and "2" follow it
    assert not capacity.spread(["same/x"])["spread"]


# -- production settings from a plan -----------------------------------------------------------


def test_production_settings_are_read_from_the_plan_by_address():
    address = "module.pipeline.module.thumbnail.module.function.aws_lambda_function.this"
    mapping = "module.pipeline.module.thumbnail.aws_lambda_event_source_mapping.jobs"
    stream = "module.pipeline.aws_lambda_event_source_mapping.notifier"
    changes = {
        address: {"after": {"memory_size": 1024, "timeout": 60,
                            "reserved_concurrent_executions": -1,
                            "architectures": ["arm64"], "function_name": "prod-thumbnail"}},
        mapping: {"after": {"batch_size": 1, "scaling_config": [{"maximum_concurrency": 10}],
                            "provisioned_poller_config": []}},
        stream: {"after": {"batch_size": 100, "parallelization_factor": None}},
        "module.pipeline.aws_api_gateway_usage_plan.api": {"after": {
            "throttle_settings": [{"rate_limit": 50, "burst_limit": 100}],
            "quota_settings": [{"limit": 100000, "period": "DAY"}]}},
        'module.pipeline.aws_cloudwatch_event_rule.schedule["r"]': {"after": {
            "schedule_expression": "rate(5 minutes)", "name": "prod-r"}},
        'module.pipeline.aws_cloudwatch_event_target.schedule["r"]': {"after": {}},
    }  # fmt: skip
    local = {
        address: {"function_name": "local-thumbnail"},
        mapping: {
            "function_name": "arn:aws:lambda:us-east-1:1:function:local-thumbnail",
            "event_source_arn": "arn:aws:sqs:us-east-1:1:local-jobs",
        },
        stream: {
            "function_name": "arn:aws:lambda:us-east-1:1:function:local-notifier",
            "event_source_arn": "arn:aws:dynamodb:us-east-1:1:table/local-media/stream/2026",
        },
        'module.pipeline.aws_cloudwatch_event_rule.schedule["r"]': {"name": "local-r"},
        'module.pipeline.aws_cloudwatch_event_target.schedule["r"]': {
            "rule": "local-r",
            "arn": "arn:aws:lambda:us-east-1:1:function:local-reconciler",
        },
    }
    settings = script.settings_from_plan(changes, local)
    assert settings["functions"]["local-thumbnail"] == {
        "memory": 1024,
        "timeout": 60,
        "reserved": None,
        "architecture": "arm64",
        "address": address,
    }
    jobs, notifier = sorted(settings["mappings"], key=lambda m: m["kind"])
    assert (jobs["function"], jobs["queue"], jobs["maximum_concurrency"]) == (
        "local-thumbnail",
        "local-jobs",
        10,
    )
    assert (notifier["function"], notifier["table"], notifier["parallelization_factor"]) == (
        "local-notifier",
        "local-media",
        1,
    )
    assert settings["usage_plans"] == [
        {"rate": 50, "burst": 100, "quota_limit": 100000, "quota_period": "DAY"}
    ]
    assert settings["schedules"] == {"local-reconciler": "rate(5 minutes)"}


def test_a_resource_address_names_its_type():
    assert script.resource_type('module.a.module.b.aws_lambda_function.this["x.y"]') == (
        "aws_lambda_function"
    )
    assert script.resource_type("aws_sqs_queue.q") == "aws_sqs_queue"


def test_aws_api_calls_leave_out_invocations_matched_events_and_stream_reads(report):
    rows = report["requests"]["rows"]
    calls = {(r["service"], r["operation"]) for r in rows if capacity.is_api_call(r)}
    assert ("s3", "PutObject") in calls
    assert ("sqs", "SendMessage (EventBridge to its SQS targets)") in calls
    assert ("execute-api", "POST /uploads") in calls
    assert not {c for c in calls if c[0] in ("lambda", "events", "dynamodbstreams")}
    per_image = report["requests"]["per_image"]
    expected = sum(r["pipeline"] for r in rows if capacity.is_api_call(r))
    assert per_image["api_calls"] == pytest.approx(expected)
    assert per_image["api_calls"] < per_image["pipeline"]


def test_sns_is_priced_by_request_and_its_quota_counted_in_messages():
    batch = {"service": "sns", "operation": "PublishBatch", "pipeline": 0.1}
    single = {"service": "sns", "operation": "Publish", "pipeline": 1.0}
    assert {(r["service"], r["operation"]) for r in (batch, single)} == capacity.SNS_PUBLISHES
    assert capacity.is_api_call(batch)


def test_a_functions_duration_is_fitted_as_fixed_plus_per_record():
    def invocation(records, seconds, init=None):
        return {
            "items": [str(i) for i in range(records)],
            "duration_ms": seconds * 1000,
            "init_ms": init,
        }

    fixed, per_record = capacity.duration_fit(
        [invocation(1, 0.03), invocation(3, 0.05), invocation(5, 0.07), invocation(9, 9, 800)]
    )
    assert fixed == pytest.approx(0.02)
    assert per_record == pytest.approx(0.01)
    # one batch size only: all of it per record, the larger estimate for bigger batches
    assert capacity.duration_fit([invocation(4, 0.08)] * 3) == (0.0, pytest.approx(0.02))
    assert capacity.duration_fit([]) == (0.0, 0.0)
