"""What the embedded stack's workload would be billed for on AWS, counted while it is served.

``GET /_devstack/usage`` answers the counts since the stack started; a workload's usage is the
difference of two answers (``make capacity`` takes one before and one after). Nothing recorded
changes what the emulator answers: a recording that fails is logged and dropped.

* **Requests**, by service, operation and caller (``OperationCount`` in faults.py, which
  ``/_devstack/requests`` sums by service and operation). The caller is the ``app/<id>`` of the
  request's User-Agent (botocore's ``user_agent_appid``, or ``AWS_SDK_UA_APP_ID``): the local
  Lambda runtime gives each function's processes its function name, and its pollers
  ``lambda-service``; requests by Terraform (``Terraform`` or ``HashiCorp`` in the User-Agent)
  are ``terraform``; anything else ``other``.
* **S3**, each request in the class S3 bills it in (``tooling.billing.s3_request``: PUT, COPY,
  POST and LIST; GET, HEAD and the rest; DELETE, free), by bucket; and every object stored
  (moto's ``put_object``, whatever the request: PUT, a browser's POST, a multipart upload):
  bytes by bucket, and its key (the latest ``MAX_KEYS_KEPT``, numbered, to tell whether the keys
  of a run spread over prefixes).
* **SQS**, by queue, operation and caller; a ``ReceiveMessage`` as ``messages`` or ``empty``.
* **EventBridge**: the events that an enabled rule with a pattern matched (moto delivers them to
  SQS in-process: no HTTP request shows them), each distinct event once by source and
  detail-type, and the target invocations by target.
* **DynamoDB capacity**, by DynamoDB's billing rules (``tooling.billing``), for every request:
  writes are measured while moto_patches' per-item locks are held (patch 9), from the item
  before and after read from moto's backend, with whether the condition failed; the units of the
  table and of each index, by index write kind; reads from what they returned (the full stored
  item, or its index entry). Per partition key value of the table and of each index: write and
  read units and the items (table primary keys) that wrote to it, kept up to
  ``MAX_KEY_VALUES`` values and ``MAX_KEY_ITEMS`` items in all (more are counted under
  ``(other)`` and in ``dropped``). And what each table and index stores (entries and bytes, with
  DynamoDB's 100 bytes of overhead each). PartiQL is counted as a request, its capacity not
  (``unmodelled``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tooling.billing import (
    S3Request,
    TableSpec,
    WriteCost,
    index_entry,
    item_size,
    key_text,
    primary_key,
    read_units,
    s3_request,
    stored_bytes,
    write_cost,
)

from devstack import moto_patches
from devstack.faults import request_body

log = logging.getLogger("devstack.usage")

TERRAFORM = "terraform"
OTHER = "other"
LAMBDA_SERVICE = "lambda-service"  # the local runtime's pollers: what the Lambda service does
RUNTIME_INTERNAL = "devstack-runtime"  # the runtime reading its configuration: not on AWS
MAX_KEY_VALUES = 200_000
MAX_KEY_ITEMS = 500_000
MAX_KEYS_KEPT = 100_000
MAX_EVENT_IDS = 20_000
OVERFLOW = "(other)"

_APP_ID = re.compile(r"(?:^|\s)app/(\S+)")


def caller_of(environ: dict[str, Any]) -> str:
    """Who sent a request: Terraform, the ``app/<id>`` of its User-Agent, or ``other``."""
    agent = environ.get("HTTP_USER_AGENT", "")
    lowered = agent.lower()
    if "terraform" in lowered or "hashicorp" in lowered:
        return TERRAFORM
    match = _APP_ID.search(agent)
    return match.group(1) if match else OTHER


def current_caller() -> str:
    """The caller of the request this thread serves (the server sets it)."""
    return getattr(moto_patches.request_context, "caller", OTHER)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """A recording step that must never change an answer: errors are logged and dropped."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception:
            log.exception("usage: %s failed; not recorded", method.__name__)
            return None

    return run


@dataclass
class _KeyValue:
    wu: float = 0.0
    ru: float = 0.0
    items: dict[str, int] = field(default_factory=dict)


@dataclass
class _ItemWrite:
    """One item of a write request: its table and key, and the item before and after."""

    table: TableSpec
    key: dict[str, Any]
    transactional: bool
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class UsageRecorder:
    def __init__(
        self,
        max_key_values: int = MAX_KEY_VALUES,
        max_key_items: int = MAX_KEY_ITEMS,
        max_keys_kept: int = MAX_KEYS_KEPT,
    ) -> None:
        self._lock = threading.Lock()
        self._max_key_values = max_key_values
        self._max_key_items = max_key_items
        self._key_items = 0
        self._dropped = Counter[str]()
        self._s3 = Counter[tuple[str, str, str, str]]()  # bucket, operation, class, caller
        self._s3_stored = Counter[tuple[str, str, str]]()  # bucket, caller, objects|bytes
        self._s3_keys: dict[str, deque[tuple[int, str]]] = {}
        self._max_keys_kept = max_keys_kept
        self._sequence = 0
        self._sqs = Counter[tuple[str, str, str, str]]()  # queue, operation, caller, outcome
        self._events = Counter[tuple[str, str]]()  # source, detail-type
        self._rules = Counter[str]()
        self._targets = Counter[str]()
        self._event_ids: OrderedDict[str, None] = OrderedDict()
        self._tables: dict[str, TableSpec] = {}
        # (table, index or "", kind "write"/"read", operation, caller) -> counters
        self._capacity: dict[tuple[str, str, str, str, str], Counter[str]] = {}
        self._index_writes = Counter[tuple[str, str, str, str]]()  # table, index, kind, caller
        self._index_units = Counter[tuple[str, str, str, str]]()
        self._keys: dict[tuple[str, str, str], _KeyValue] = {}
        self._storage = Counter[tuple[str, str, str]]()  # table, index, entries|bytes
        self._unmodelled = Counter[tuple[str, str]]()  # operation, caller

    # -- HTTP requests ----------------------------------------------------------------------

    @_guarded
    def s3(self, environ: dict[str, Any], caller: str) -> S3Request:
        request = s3_request(
            environ.get("REQUEST_METHOD", "GET"),
            _raw_path(environ),
            environ.get("QUERY_STRING", ""),
            {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")},
            environ.get("HTTP_HOST", ""),
        )
        with self._lock:
            self._s3[(request.bucket or "", request.operation, request.billing, caller)] += 1
        return request

    @_guarded
    def sqs(self, environ: dict[str, Any], operation: str, caller: str, answer: bytes) -> None:
        queue = sqs_queue(environ)
        outcome = ""
        if operation == "ReceiveMessage":
            outcome = "messages" if b'"Messages"' in answer or b"<Message>" in answer else "empty"
        with self._lock:
            self._sqs[(queue, operation, caller, outcome)] += 1

    # -- moto hooks -------------------------------------------------------------------------

    @_guarded
    def object_stored(self, bucket: str, key: str, size: int) -> None:
        caller = current_caller()
        with self._lock:
            self._s3_stored[(bucket, caller, "objects")] += 1
            self._s3_stored[(bucket, caller, "bytes")] += size
            self._sequence += 1
            kept = self._s3_keys.setdefault(bucket, deque(maxlen=self._max_keys_kept))
            kept.append((self._sequence, key))

    @_guarded
    def event_matched(self, rule: Any, event: dict[str, Any]) -> None:
        with self._lock:
            event_id = str(event.get("id", ""))
            if event_id not in self._event_ids:
                self._event_ids[event_id] = None
                while len(self._event_ids) > MAX_EVENT_IDS:
                    self._event_ids.popitem(last=False)
                self._events[(str(event.get("source")), str(event.get("detail-type")))] += 1
            self._rules[rule.arn] += 1
            for target in rule.targets:
                self._targets[target["Arn"]] += 1

    def observe_write(
        self,
        handler: Any,
        action: str,
        keys: list[Any] | None,
        carry_out: Callable[[], Any],
    ) -> Any:
        """moto_patches' write observer: runs the write (its locks held) and measures it."""
        caller = current_caller()
        backend = handler.dynamodb_backend
        writes = self._item_writes(backend, action, handler.body)
        if writes is None:
            self._count_unmodelled(action, caller)
        else:
            self._read_items(backend, writes, "before")
        try:
            result = carry_out()
        except Exception as error:
            if writes is not None and _condition_failed(error):
                for write in writes:
                    write.after = write.before
                self._record_writes(action, writes, caller, failed=True)
            raise
        if writes is not None:
            self._read_items(backend, writes, "after")
            self._record_writes(action, writes, caller, failed=False)
        return result

    def observe_read(self, handler: Any, action: str, result: Any) -> None:
        self._record_read(handler, action, result, current_caller())

    # -- DynamoDB ---------------------------------------------------------------------------

    def _spec(self, table: Any) -> TableSpec:
        """The key schema, indexes and stream of one of moto's tables (read from the object:
        its describe() counts every item)."""

        def index(entry: Any) -> dict[str, Any]:
            return {
                "IndexName": entry.name,
                "KeySchema": entry.schema,
                "Projection": entry.projection,
            }

        spec = TableSpec.from_description(
            {
                "TableName": table.name,
                "KeySchema": table.schema,
                "GlobalSecondaryIndexes": [index(i) for i in table.global_indexes or ()],
                "LocalSecondaryIndexes": [index(i) for i in table.indexes or ()],
                "StreamSpecification": getattr(table, "stream_specification", None) or {},
            }
        )
        with self._lock:
            if self._tables.get(spec.name) != spec:
                self._tables[spec.name] = spec
        return spec

    @_guarded
    def _item_writes(
        self, backend: Any, action: str, body: dict[str, Any]
    ) -> list[_ItemWrite] | None:
        found = []

        def add(table_name: str, attributes: dict[str, Any], transactional: bool) -> None:
            spec = self._spec(backend.get_table(table_name))
            key = {name: attributes[name] for name in spec.keys}
            found.append(_ItemWrite(spec, key, transactional))

        if action == "put_item":
            add(body["TableName"], body["Item"], False)
        elif action in ("update_item", "delete_item"):
            add(body["TableName"], body["Key"], False)
        elif action == "batch_write_item":
            for name, requests in body["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        add(name, request["PutRequest"]["Item"], False)
                    else:
                        add(name, request["DeleteRequest"]["Key"], False)
        elif action == "transact_write_items":
            for entry in body["TransactItems"]:
                (kind, operation), *_ = entry.items()
                add(operation["TableName"], operation["Item" if kind == "Put" else "Key"], True)
        else:
            return None  # PartiQL
        return found

    @_guarded
    def _read_items(self, backend: Any, writes: list[_ItemWrite], when: str) -> None:
        for write in writes:
            item = backend.get_item(write.table.name, write.key)
            setattr(write, when, item.to_json()["Attributes"] if item is not None else None)

    @_guarded
    def _count_unmodelled(self, action: str, caller: str) -> None:
        with self._lock:
            self._unmodelled[(_operation_name(action), caller)] += 1

    @_guarded
    def _record_writes(
        self, action: str, writes: list[_ItemWrite], caller: str, *, failed: bool
    ) -> None:
        operation = _operation_name(action)
        with self._lock:
            tables_counted: set[str] = set()
            for write in writes:
                spec = write.table
                cost: WriteCost = write_cost(
                    write.before,
                    write.after,
                    spec,
                    failed=failed,
                    transactional=write.transactional,
                )
                counters = self._capacity_counters(spec.name, "", "write", operation, caller)
                if spec.name not in tables_counted:
                    counters["requests"] += 1
                    tables_counted.add(spec.name)
                counters["items"] += 1
                counters["units"] += cost.table_units
                counters["failed"] += int(failed)
                item_id = primary_key(write.key, spec.keys)
                self._key_write(spec.name, "", key_text(write.key[spec.hash_key]), item_id, cost)
                for index_name, index_writes in cost.indexes.items():
                    index_counters = self._capacity_counters(
                        spec.name, index_name, "write", operation, caller
                    )
                    for index_write in index_writes:
                        index_counters["units"] += index_write.units
                        index_counters["items"] += 1
                        self._index_writes[(spec.name, index_name, index_write.kind, caller)] += 1
                        self._index_units[(spec.name, index_name, index_write.kind, caller)] += (
                            index_write.units
                        )
                        self._key_index_write(
                            spec.name, index_name, index_write.key, item_id, index_write.units
                        )
                if not failed:
                    self._store(spec, write.before, -1)
                    self._store(spec, write.after, +1)

    def _store(self, spec: TableSpec, item: dict[str, Any] | None, sign: int) -> None:
        for index, (entries, size) in stored_bytes(item, spec).items():
            self._storage[(spec.name, index or "", "entries")] += sign * entries
            self._storage[(spec.name, index or "", "bytes")] += sign * size

    def _capacity_counters(
        self, table: str, index: str, kind: str, operation: str, caller: str
    ) -> Counter[str]:
        key = (table, index, kind, operation, caller)
        if key not in self._capacity:
            self._capacity[key] = Counter()
        return self._capacity[key]

    def _key_value(self, table: str, index: str, value: str) -> _KeyValue:
        key = (table, index, value)
        found = self._keys.get(key)
        if found is None:
            if len(self._keys) >= self._max_key_values:
                self._dropped["key_values"] += 1
                key = (table, index, OVERFLOW)
                found = self._keys.get(key)
            if found is None:
                found = self._keys[key] = _KeyValue()
        return found

    def _add_item(self, entry: _KeyValue, item_id: str) -> None:
        if item_id in entry.items:
            entry.items[item_id] += 1
        elif self._key_items < self._max_key_items:
            entry.items[item_id] = 1
            self._key_items += 1
        else:
            self._dropped["key_items"] += 1

    def _key_write(self, table: str, index: str, value: str, item_id: str, cost: WriteCost) -> None:
        entry = self._key_value(table, index, value)
        entry.wu += cost.table_units
        self._add_item(entry, item_id)

    def _key_index_write(
        self, table: str, index: str, value: str, item_id: str, units: float
    ) -> None:
        entry = self._key_value(table, index, value)
        entry.wu += units
        self._add_item(entry, item_id)

    @_guarded
    def _record_read(self, handler: Any, action: str, result: Any, caller: str) -> None:
        body = handler.body
        backend = handler.dynamodb_backend
        answer = getattr(result, "result", None) or {}
        operation = _operation_name(action)
        if action == "get_item":
            spec = self._spec(backend.get_table(body["TableName"]))
            size = _stored_size(backend, spec, body["Key"])
            units = read_units(size, bool(body.get("ConsistentRead")))
            self._add_read(spec.name, "", operation, caller, units, items=1, returned=int(size > 0))
            self._key_read(spec.name, "", key_text(body["Key"].get(spec.hash_key)), units)
        elif action == "batch_get_item":
            for name, request in body["RequestItems"].items():
                spec = self._spec(backend.get_table(name))
                consistent = bool(request.get("ConsistentRead"))
                total, found = 0.0, 0
                for key in request["Keys"]:
                    size = _stored_size(backend, spec, key)
                    units = read_units(size, consistent)
                    total += units
                    found += int(size > 0)
                    self._key_read(spec.name, "", key_text(key.get(spec.hash_key)), units)
                self._add_read(
                    spec.name,
                    "",
                    operation,
                    caller,
                    total,
                    items=len(request["Keys"]),
                    returned=found,
                )
        elif action in ("query", "scan"):
            spec = self._spec(backend.get_table(body["TableName"]))
            index = spec.index(body.get("IndexName"))
            items = answer.get("Items") or []
            size = sum(_read_size(backend, spec, index, item) for item in items)
            consistent = bool(body.get("ConsistentRead")) and (index is None or index.local)
            units = read_units(size, consistent)
            index_name = index.name if index else ""
            self._add_read(
                spec.name,
                index_name,
                operation,
                caller,
                units,
                items=len(items),
                returned=len(items),
                scanned=int(answer.get("ScannedCount", len(items))),
            )
            if action == "query":
                hash_key = index.hash_key if index else spec.hash_key
                value = _query_partition(body, hash_key, items)
                if value is not None:
                    self._key_read(spec.name, index_name, value, units)
        elif action == "transact_get_items":
            for entry in body["TransactItems"]:
                get = entry["Get"]
                spec = self._spec(backend.get_table(get["TableName"]))
                size = _stored_size(backend, spec, get["Key"])
                units = 2 * read_units(size)
                self._add_read(
                    spec.name, "", operation, caller, units, items=1, returned=int(size > 0)
                )
                self._key_read(spec.name, "", key_text(get["Key"].get(spec.hash_key)), units)

    def _add_read(
        self,
        table: str,
        index: str,
        operation: str,
        caller: str,
        units: float,
        *,
        items: int,
        returned: int,
        scanned: int = 0,
    ) -> None:
        with self._lock:
            counters = self._capacity_counters(table, index, "read", operation, caller)
            counters["requests"] += 1
            counters["units"] += units
            counters["items"] += items
            counters["returned"] += returned
            counters["scanned"] += scanned

    def _key_read(self, table: str, index: str, value: str, units: float) -> None:
        with self._lock:
            self._key_value(table, index, value).ru += units

    # -- the answer -------------------------------------------------------------------------

    def snapshot(self, requests: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything counted so far, as JSON (``GET /_devstack/usage``)."""
        with self._lock:
            return {
                "requests": requests or [],
                "s3": {
                    "requests": [
                        {"bucket": b, "operation": o, "class": c, "caller": who, "count": n}
                        for (b, o, c, who), n in sorted(self._s3.items())
                    ],
                    "stored": _rows(("bucket", "caller", "measure"), self._s3_stored),
                    "sequence": self._sequence,
                    "keys": {b: list(kept) for b, kept in self._s3_keys.items()},
                },
                "sqs": [
                    {"queue": q, "operation": o, "caller": who, "outcome": out, "count": n}
                    for (q, o, who, out), n in sorted(self._sqs.items())
                ],
                "events": {
                    "matched": [
                        {"source": s, "detail_type": d, "count": n}
                        for (s, d), n in sorted(self._events.items())
                    ],
                    "rules": dict(self._rules),
                    "targets": dict(self._targets),
                },
                "dynamodb": {
                    "tables": {name: spec.describe() for name, spec in self._tables.items()},
                    "capacity": [
                        {
                            "table": t,
                            "index": i,
                            "kind": k,
                            "operation": o,
                            "caller": who,
                            **counters,
                        }
                        for (t, i, k, o, who), counters in sorted(self._capacity.items())
                    ],
                    "index_writes": [
                        {
                            "table": t,
                            "index": i,
                            "kind": k,
                            "caller": who,
                            "count": n,
                            "units": self._index_units[(t, i, k, who)],
                        }
                        for (t, i, k, who), n in sorted(self._index_writes.items())
                    ],
                    "keys": [
                        {
                            "table": t,
                            "index": i,
                            "key": v,
                            "wu": entry.wu,
                            "ru": entry.ru,
                            "items": dict(entry.items),
                        }
                        for (t, i, v), entry in self._keys.items()
                    ],
                    "storage": _rows(("table", "index", "measure"), self._storage),
                    "unmodelled": [
                        {"operation": o, "caller": who, "count": n}
                        for (o, who), n in sorted(self._unmodelled.items())
                    ],
                    "dropped": dict(self._dropped),
                },
            }


def _rows(names: tuple[str, ...], counts: Counter[Any]) -> list[dict[str, Any]]:
    return [
        {**dict(zip(names, key, strict=True)), "value": value}
        for key, value in sorted(counts.items())
    ]


def _operation_name(action: str) -> str:
    return "".join(part.title() for part in action.split("_"))


def _condition_failed(error: BaseException) -> bool:
    kind = str(getattr(error, "error_type", "") or type(error).__name__).rsplit("#", 1)[-1]
    return kind in (
        "ConditionalCheckFailedException",
        "ConditionalCheckFailed",
        "TransactionCanceledException",
    )


def _stored_size(backend: Any, spec: TableSpec, key: dict[str, Any]) -> int:
    item = backend.get_item(spec.name, {name: key[name] for name in spec.keys})
    return item_size(item.to_json()["Attributes"]) if item is not None else 0


def _read_size(backend: Any, spec: TableSpec, index: Any, returned: dict[str, Any]) -> int:
    """What reading one returned item is billed on: the stored item, or its index entry
    (found by the table's key when the answer carries it; otherwise what was returned)."""
    if all(k in returned for k in spec.keys):
        item = backend.get_item(spec.name, {k: returned[k] for k in spec.keys})
        if item is not None:
            full = item.to_json()["Attributes"]
            entry = full if index is None else index_entry(full, spec, index)
            if entry is not None:
                return item_size(entry)
    return item_size(returned)


_EQUALS = re.compile(r"(#?[A-Za-z0-9_.\-]+)\s*=\s*(:[A-Za-z0-9_]+)")


def _query_partition(
    body: dict[str, Any], hash_key: str, items: list[dict[str, Any]]
) -> str | None:
    """The partition key value a Query read: from its key condition, else its first item."""
    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    for name, placeholder in _EQUALS.findall(body.get("KeyConditionExpression") or ""):
        if names.get(name, name) == hash_key and placeholder in values:
            return key_text(values[placeholder])
    condition = (body.get("KeyConditions") or {}).get(hash_key) or {}
    if condition.get("AttributeValueList"):
        return key_text(condition["AttributeValueList"][0])
    if items and hash_key in items[0]:
        return key_text(items[0][hash_key])
    return None


def sqs_queue(environ: dict[str, Any]) -> str:
    """The queue an SQS request names (its QueueUrl, JSON or query protocol), by name."""
    body = request_body(environ)
    url = ""
    if environ.get("HTTP_X_AMZ_TARGET"):
        try:
            url = str(json.loads(body or b"{}").get("QueueUrl", ""))
        except ValueError:
            url = ""
    else:
        url = parse_qs(body.decode(errors="replace")).get("QueueUrl", [""])[0]
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] if url else ""


def _raw_path(environ: dict[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    return urlsplit(raw).path if raw else environ.get("PATH_INFO", "")


_READS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items")
_installed: UsageRecorder | None = None


def install(recorder: UsageRecorder) -> None:
    """Hook the recorder into moto (after ``moto_patches.apply()``): DynamoDB writes (through
    patch 9's observer) and reads, S3's stored objects, EventBridge's rule deliveries."""
    global _installed
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.models import Rule
    from moto.s3.models import S3Backend

    moto_patches.observe_dynamodb_writes(recorder.observe_write)
    if _installed is not None:
        _installed = recorder
        return
    _installed = recorder

    def reading(name: str, action: Any) -> Any:
        @functools.wraps(action)
        def read(self: DynamoHandler) -> Any:
            result = action(self)
            if _installed is not None:
                _installed.observe_read(self, name, result)
            return result

        return read

    for name in _READS:
        setattr(DynamoHandler, name, reading(name, getattr(DynamoHandler, name)))

    put_object = S3Backend.put_object

    def put_object_recorded(
        self: S3Backend, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any
    ) -> Any:
        stored = put_object(self, bucket_name, key_name, value, *args, **kwargs)
        if _installed is not None:
            _installed.object_stored(bucket_name, key_name, len(value or b""))
        return stored

    S3Backend.put_object = put_object_recorded  # type: ignore[method-assign]

    send = Rule.send_to_targets

    def send_recorded(
        self: Rule, original_event: dict[str, Any], transform_input: bool = True
    ) -> None:
        try:
            send(self, original_event, transform_input)
        finally:  # after: patch 2 gives an S3 event its own id in place, on its first rule
            if _installed is not None:
                _matched(_installed, self, original_event)

    Rule.send_to_targets = send_recorded  # type: ignore[method-assign]


@_guarded
def _matched(recorder: UsageRecorder, rule: Any, event: dict[str, Any]) -> None:
    if moto_patches.rule_receives(rule) and rule.event_pattern.matches_event(event):
        recorder.event_matched(rule, event)
