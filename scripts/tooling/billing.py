"""How AWS bills what the embedded stack serves: DynamoDB capacity units and S3 request classes.

Pure functions of the requests and items, used by the embedded stack's usage recorder
(``devstack/usage.py``) while it serves them and by the capacity model (``tooling/capacity.py``).
The rules and where they come from are listed in ``docs/aws-prices.toml`` and
docs/operations.md ("Capacity").

DynamoDB (on-demand):

* item size: the sum over attributes of the name's UTF-8 bytes and the value's size. String:
  UTF-8 bytes; Number: 1 byte per 2 significant digits, plus 1; Binary: its bytes; Boolean and
  Null: 1; List and Map: 3 plus the elements (a map's names included) plus 1 byte per element;
  a set: the sum of its elements.
* a write costs ceil(size / 1 KB) write units, at least 1: PutItem and UpdateItem the larger of
  the item before and after, DeleteItem the deleted item. A write whose condition failed costs
  the existing item's size (1 unit when there is none) and writes no index. TransactWriteItems
  costs twice that.
* a global or local secondary index is written when the item's entry in it changes: entering
  the index is a put sized by the new entry, leaving it a delete sized by the old entry, a
  changed index key a delete and a put, a changed projection (same key) one write of the larger
  entry; an item in the index neither before nor after, or with the same entry, costs nothing.
  An entry is the table's key attributes, the index's key attributes and the projected ones
  (ALL: every attribute; KEYS_ONLY: none more; INCLUDE: the NonKeyAttributes).
* a read costs ceil(size / 4 KB) read units, at least 1 (an absent item costs the minimum),
  half of that when eventually consistent; BatchGetItem per item, Query and Scan on the sum of
  the sizes of what they read.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, unquote

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
STORAGE_OVERHEAD_BYTES = 100  # per item and per index entry, for storage (not capacity)

Item = Mapping[str, Any]  # DynamoDB JSON: {"name": {"S": "..."}, ...}


# ---------------------------------------------------------------------------------------------
# DynamoDB item sizes and capacity units
# ---------------------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """A Number's size: 1 byte per 2 significant digits, plus 1 (leading and trailing zeros do
    not count)."""
    try:
        digits = Decimal(str(text)).normalize().as_tuple().digits
    except InvalidOperation:
        return len(str(text))
    significant = len(digits) if any(digits) else 1
    return math.ceil(significant / 2) + 1


def _binary_size(raw: Any) -> int:
    if isinstance(raw, bytes | bytearray):
        return len(raw)
    try:
        return len(base64.b64decode(str(raw), validate=True))
    except (binascii.Error, ValueError):
        return len(str(raw).encode())


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value in DynamoDB JSON (``{"S": "abc"}``)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return number_size(raw)
    if kind == "B":
        return _binary_size(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode()) for s in raw)
    if kind == "NS":
        return sum(number_size(n) for n in raw)
    if kind == "BS":
        return sum(_binary_size(b) for b in raw)
    if kind == "L":
        return 3 + sum(value_size(element) + 1 for element in raw)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(v) + 1 for name, v in raw.items())
    raise ValueError(f"not a DynamoDB attribute value: {kind}")


def item_size(item: Item | None) -> int:
    """The size of an item: its attribute names' UTF-8 bytes plus their values' sizes."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool = True) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class IndexSpec:
    name: str
    hash_key: str
    range_key: str | None = None
    projection: str = "ALL"  # ALL, KEYS_ONLY, INCLUDE
    non_key_attributes: tuple[str, ...] = ()
    local: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)


@dataclass(frozen=True)
class TableSpec:
    name: str
    hash_key: str
    range_key: str | None = None
    indexes: tuple[IndexSpec, ...] = ()
    stream: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    def index(self, name: str | None) -> IndexSpec | None:
        return next((i for i in self.indexes if i.name == name), None)

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> TableSpec:
        """From DescribeTable's ``Table`` (or moto's ``TableDescription``)."""
        hash_key, range_key = _key_schema(table["KeySchema"])
        indexes = []
        for local, entries in (
            (False, table.get("GlobalSecondaryIndexes") or []),
            (True, table.get("LocalSecondaryIndexes") or []),
        ):
            for entry in entries:
                index_hash, index_range = _key_schema(entry["KeySchema"])
                projection = entry.get("Projection") or {}
                indexes.append(
                    IndexSpec(
                        name=entry["IndexName"],
                        hash_key=index_hash,
                        range_key=index_range,
                        projection=projection.get("ProjectionType", "ALL"),
                        non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
                        local=local,
                    )
                )
        stream = bool((table.get("StreamSpecification") or {}).get("StreamEnabled"))
        return cls(table["TableName"], hash_key, range_key, tuple(indexes), stream)

    def describe(self) -> dict[str, Any]:
        """JSON for reports: keys, indexes (key, projection), stream."""
        return {
            "hash_key": self.hash_key,
            "range_key": self.range_key,
            "stream": self.stream,
            "indexes": {
                i.name: {
                    "hash_key": i.hash_key,
                    "range_key": i.range_key,
                    "projection": i.projection,
                    "non_key_attributes": list(i.non_key_attributes),
                    "local": i.local,
                }
                for i in self.indexes
            },
        }


def _key_schema(schema: list[Mapping[str, str]]) -> tuple[str, str | None]:
    hash_key = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
    range_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
    return hash_key, range_key


def key_text(value: Mapping[str, Any] | None) -> str:
    """A key attribute's value as text (for per-key reports): the string, number or base64."""
    if not value:
        return ""
    ((_, raw),) = value.items()
    if isinstance(raw, bytes | bytearray):
        return base64.b64encode(raw).decode()
    return str(raw)


KEY_SEPARATOR = "\x00"


def primary_key(item: Item, keys: tuple[str, ...]) -> str:
    """An item's primary key as one string: its partition key value, then (after
    KEY_SEPARATOR) its sort key value, if the table has one."""
    return KEY_SEPARATOR.join(key_text(item.get(k)) for k in keys)


def index_entry(item: Item | None, table: TableSpec, index: IndexSpec) -> dict[str, Any] | None:
    """The item's entry in the index (what the index stores), or None when the item lacks an
    index key attribute (a sparse index) or there is no item."""
    if not item or any(k not in item for k in index.keys):
        return None
    if index.projection == "ALL":
        return dict(item)
    names = set(table.keys) | set(index.keys)
    if index.projection == "INCLUDE":
        names |= set(index.non_key_attributes)
    return {name: value for name, value in item.items() if name in names}


@dataclass(frozen=True)
class IndexWrite:
    """One write to an index: ``put`` (the item enters it, or its key changed), ``delete`` (it
    leaves it, or its key changed) or ``update`` (same key, projected attributes changed)."""

    kind: str
    key: str  # the index's partition key value the write lands on
    units: float
    size: int  # of the entry written (or deleted)


def index_writes(
    before: Item | None, after: Item | None, table: TableSpec, index: IndexSpec
) -> list[IndexWrite]:
    """What a successful write of an item from ``before`` to ``after`` writes to the index."""
    old, new = index_entry(before, table, index), index_entry(after, table, index)
    if old is None and new is None:
        return []
    if old is None:
        assert new is not None
        size = item_size(new)
        return [IndexWrite("put", key_text(new[index.hash_key]), write_units(size), size)]
    if new is None:
        size = item_size(old)
        return [IndexWrite("delete", key_text(old[index.hash_key]), write_units(size), size)]
    if any(old.get(k) != new.get(k) for k in index.keys):
        old_size, new_size = item_size(old), item_size(new)
        return [
            IndexWrite("delete", key_text(old[index.hash_key]), write_units(old_size), old_size),
            IndexWrite("put", key_text(new[index.hash_key]), write_units(new_size), new_size),
        ]
    if old != new:
        size = max(item_size(old), item_size(new))
        return [IndexWrite("update", key_text(new[index.hash_key]), write_units(size), size)]
    return []


@dataclass
class WriteCost:
    """The capacity one item write consumed: the table's units and each index's writes."""

    table_units: float
    indexes: dict[str, list[IndexWrite]] = field(default_factory=dict)
    failed: bool = False

    @property
    def index_units(self) -> float:
        return sum(w.units for writes in self.indexes.values() for w in writes)


def write_cost(
    before: Item | None,
    after: Item | None,
    table: TableSpec,
    *,
    failed: bool = False,
    transactional: bool = False,
) -> WriteCost:
    """The capacity of one item write (PutItem, UpdateItem, DeleteItem, or one item of a batch
    or transaction), from the item before and after it. ``failed``: its condition failed (the
    existing item's size is billed; nothing is written to any index). ``transactional``: twice
    the units (the table's by DynamoDB's rule; the indexes' too, an assumption)."""
    factor = 2 if transactional else 1
    if failed:
        return WriteCost(write_units(item_size(before)) * factor, failed=True)
    units = write_units(max(item_size(before), item_size(after)))
    cost = WriteCost(units * factor)
    for index in table.indexes:
        writes = index_writes(before, after, table, index)
        if writes:
            cost.indexes[index.name] = [
                IndexWrite(w.kind, w.key, w.units * factor, w.size) for w in writes
            ]
    return cost


def stored_bytes(item: Item | None, table: TableSpec) -> dict[str | None, tuple[int, int]]:
    """(entries, bytes) the item occupies in the table (key None) and in each index, for
    storage: its size plus STORAGE_OVERHEAD_BYTES per item or entry."""
    found: dict[str | None, tuple[int, int]] = {}
    if not item:
        return found
    found[None] = (1, item_size(item) + STORAGE_OVERHEAD_BYTES)
    for index in table.indexes:
        entry = index_entry(item, table, index)
        if entry is not None:
            found[index.name] = (1, item_size(entry) + STORAGE_OVERHEAD_BYTES)
    return found


# ---------------------------------------------------------------------------------------------
# S3 request classes
# ---------------------------------------------------------------------------------------------

PUT_CLASS = "put"  # PUT, COPY, POST, LIST: $ per 1,000
GET_CLASS = "get"  # GET, SELECT, HEAD and all other requests
FREE_CLASS = "free"  # DELETE (and CANCEL)

_BUCKET_SUBRESOURCES = frozenset(
    {
        "acl",
        "cors",
        "encryption",
        "lifecycle",
        "location",
        "logging",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "tagging",
        "versioning",
        "website",
        "accelerate",
        "analytics",
        "intelligent-tiering",
        "inventory",
        "metrics",
    }
)


@dataclass(frozen=True)
class S3Request:
    bucket: str | None
    key: str | None
    operation: str
    billing: str  # PUT_CLASS, GET_CLASS or FREE_CLASS


def s3_request(
    method: str, path: str, query: str, headers: Mapping[str, str], host: str = ""
) -> S3Request:
    """The S3 operation of a request and the class S3 bills it in.

    Path-style (``/bucket/key``) or virtual-host style (``bucket.s3...`` in ``host``). PUT,
    COPY (a PUT with ``x-amz-copy-source``), POST (a browser upload, CreateMultipartUpload,
    CompleteMultipartUpload, and DeleteObjects: ``POST ?delete``, a POST request, is counted in
    the PUT/COPY/POST/LIST class: S3's pricing names DELETE requests as free, and this is not
    one) and LIST (GET of a bucket: ``?list-type=2``, plain, ``?versions``, ``?uploads``) are one
    class; GET, HEAD, OPTIONS and the other GETs of a bucket's configuration another; DELETE is
    free.
    """
    method = method.upper()
    params = parse_qs(query, keep_blank_values=True)
    bucket, key = _bucket_and_key(path, host)
    if method == "DELETE":
        return S3Request(bucket, key, "DeleteObject" if key else "DeleteBucket", FREE_CLASS)
    if method == "HEAD":
        return S3Request(bucket, key, "HeadObject" if key else "HeadBucket", GET_CLASS)
    if method == "GET":
        operation, billing = _s3_get(bucket, key, params)
    elif method == "POST":
        operation, billing = _s3_post(key, params), PUT_CLASS
    elif method == "PUT":
        names = {k.lower() for k in headers}
        operation, billing = _s3_put(key, params, "x-amz-copy-source" in names), PUT_CLASS
    else:  # OPTIONS (CORS preflight) and anything else: "all other requests"
        operation, billing = method.title(), GET_CLASS
    return S3Request(bucket, key, operation, billing)


_OBJECT_SUBRESOURCES = ("tagging", "acl", "retention", "legal-hold")


def _s3_get(bucket: str | None, key: str | None, params: dict[str, Any]) -> tuple[str, str]:
    if bucket is None:
        return "ListBuckets", PUT_CLASS
    if key is None:
        for name, operation in (
            ("list-type", "ListObjectsV2"),
            ("versions", "ListObjectVersions"),
            ("uploads", "ListMultipartUploads"),
        ):
            if name in params:
                return operation, PUT_CLASS
        sub = next((p for p in params if p in _BUCKET_SUBRESOURCES), None)
        return (f"GetBucket:{sub}", GET_CLASS) if sub else ("ListObjects", PUT_CLASS)
    if "uploadId" in params:
        return "ListParts", PUT_CLASS
    sub = next((p for p in params if p in _OBJECT_SUBRESOURCES), None)
    return (f"GetObject:{sub}" if sub else "GetObject"), GET_CLASS


def _s3_post(key: str | None, params: dict[str, Any]) -> str:
    if "delete" in params:
        return "DeleteObjects"
    if "uploads" in params:
        return "CreateMultipartUpload"
    if "uploadId" in params:
        return "CompleteMultipartUpload"
    return "PostObject" if key is None else "Post"


def _s3_put(key: str | None, params: dict[str, Any], copy: bool) -> str:
    if key is None:
        sub = next((p for p in params if p in _BUCKET_SUBRESOURCES), None)
        return f"PutBucket:{sub}" if sub else "CreateBucket"
    if copy:
        return "UploadPartCopy" if "uploadId" in params else "CopyObject"
    if "uploadId" in params:
        return "UploadPart"
    sub = next((p for p in params if p in _OBJECT_SUBRESOURCES), None)
    return f"PutObject:{sub}" if sub else "PutObject"


def _bucket_and_key(path: str, host: str) -> tuple[str | None, str | None]:
    host = host.split(":", maxsplit=1)[0]
    marker = host.find(".s3.")
    if marker < 0:
        marker = host.find(".s3-")
    if marker > 0:  # virtual-host style: the bucket is in the host name
        key = unquote(path.lstrip("/"))
        return host[:marker], key or None
    parts = path.lstrip("/").split("/", 1)
    bucket = unquote(parts[0]) or None
    key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
    return bucket, key
