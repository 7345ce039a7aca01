"""Where moto differs from AWS in ways this pipeline depends on, corrected in-process.

Each patch is small, named for the AWS behaviour it restores, and applied once at start-up of the
embedded stack (never in tests that use ``mock_aws``).

1. Event source mappings. moto attaches a mapping to its queue or table and, on every
   ``SendMessage`` or stream write, synchronously receives the messages and tries to run the
   function in Docker. Without Docker that fails and makes the messages visible again with their
   receive count raised, so moto would silently eat retries. On AWS the Lambda service polls;
   here the local Lambda runtime does, so the mappings are detached from moto's own invoker.
2. S3 events in EventBridge. moto sends every S3 event with the same ``id`` and the same
   ``detail.object.sequencer``. On AWS the sequencer grows with each write of a key and is how an
   older event is told from a newer one; ids are unique. Both are made so here.
3. SQS queue attributes. moto stores ``RedriveAllowPolicy`` but never returns it (Terraform's
   ``aws_sqs_queue_redrive_allow_policy`` then waits for it until it times out), any
   ``SetQueueAttributes`` call without ``Policy`` erases the queue's policy, and ``RedrivePolicy``
   comes back re-serialised with spaces (a perpetual Terraform diff). AWS does none of these.
4. S3 notification configuration. moto honours ``EventBridgeConfiguration`` but leaves it out of
   ``GetBucketNotificationConfiguration``, so Terraform would re-apply it on every run.
5. S3 bucket policy conditions. moto evaluates only ``StringEquals``, treats every other
   condition as met, and turns a statement whose condition is *not* met into a denial (right for
   nothing: IAM ignores such a statement). So a ``Deny`` guarded by
   ``"Bool": {"aws:SecureTransport": "false"}`` (the TLS-only policy of every bucket here) denies
   every object request, over TLS or not. Here ``Bool`` is evaluated, against whether the request
   really came over TLS (``request_context``, set per request), and an unmet condition makes its
   statement not apply.
6. Presigned POST policies. moto stores whatever a browser-style POST sends, whatever its policy
   says. S3 checks the policy: its expiration, every condition (exact and ``starts-with``
   matches, ``content-length-range``) and that no form field is left uncovered. Those checks
   are made here, with S3's error codes (AccessDenied, EntityTooLarge, EntityTooSmall). The
   policy's signature is not verified (moto does not know the signer's secret).
   moto also answers CORS only to preflights (OPTIONS); S3 adds the matching rule's headers to
   the POST itself, without which a browser cannot read the answer to its upload. Added here.
7. EventBridge rules that receive events. moto hands every event on a bus to every rule of it:
   a scheduled rule (no event pattern) matches everything, a DISABLED rule delivers too. A
   scheduled rule's Lambda target then raises NotImplementedError inside S3's notification
   loop, whose bare ``except`` silently drops the S3 event for every rule after it: adding a
   scheduled Lambda (a reconciler) would stop the pipeline. On AWS a rule receives events only
   when it is ENABLED and has an event pattern; schedules fire on their own (schedules.py).
8. Deletes in a versioned bucket. moto sends S3's "Object Deleted" event when a key of an
   unversioned bucket is deleted, but not when a ``DeleteObject`` without a version id puts a
   delete marker on a versioned one. S3 sends it (``deletion-type`` "Delete Marker Created"):
   with ``uploads_versioning`` on, that event is how the pipeline learns an original is gone.
9. DynamoDB writes are atomic, per item. DynamoDB applies the writes to one item one after
   another: a conditional write sees, and its ``ALL_OLD`` returns, the item as the previous write
   left it; writes to different items go on in parallel. moto's backend reads, changes and
   stores an item in steps, so two writes of one item served at once by two server threads
   could both start from the same old item. Then both workers of an image record their half,
   neither sees the other's, and the image stays PROCESSING until the reconciler's stuck sweep.
   Here each write action holds a lock per item it writes: the key is the table and the item's
   primary key, read from the request (``Item`` with the table's key schema for PutItem, ``Key``
   for UpdateItem and DeleteItem, every item of a BatchWriteItem, taken in one sorted order so
   that two batches cannot deadlock). Locks live while someone holds or waits for them. What
   cannot be keyed that way takes an exclusive mode that waits for every keyed write and holds
   off new ones: PartiQL (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction), a
   request whose keys cannot be read (moto then answers its error), and TransactWriteItems,
   because moto carries out a transaction on a copy of each table it touches and, when it is
   cancelled, puts the whole copies back: a write to another item of those tables made
   meanwhile would be undone. A stream's records are numbered by the length of its list, so
   appending one is made atomic too (two writes to different items got the same sequence
   number). Reads and every other service are untouched.
10. SQS receives in linear time. For every message it hands out, moto's ``ReceiveMessage``
   checks the retention period by building all of the queue's attributes three times, and
   each build counts the visible and in-flight messages: a receive costs the square of the
   queue's depth. Under a burst (hundreds of messages on a queue, pollers receiving from all
   of them) that was a quarter of the embedded server's CPU, and the server, one Python
   process, is what bounds the stack's throughput. Here the check reads the queue's retention
   period alone, and the clock behind a message's visibility and delay is ``time.time()``
   (moto derives the same instant from naive datetimes). What is received is unchanged.
11. Requests find their service once per host. moto's server matches each request's host
   against the URL pattern of every service it has (hundreds of regular expressions), under a
   lock that every request thread takes: ~5% of the server's CPU under a burst, and a queue of
   threads behind it. The answer depends on the host alone (a handful here: one per service
   and region, a bucket's virtual host), so it is remembered per host.
12. CloudFront cache policies. moto serves distributions, origin access controls, public keys
   and key groups, but not cache policies, which the renditions' distribution uses (a year at
   the edge, nothing but the path in the cache key). Create, get (and its config), update,
   list and delete are added, storing the policy's config as sent, with an id and an ETag.
13. CloudFront answers with what it was given. moto drops an origin's Origin Access Control,
   answers a cache behaviour that names a cache policy with legacy ``ForwardedValues`` too,
   gives CloudFront's default certificate an ``SSLSupportMethod``, and keeps no comment of a
   public key or a key group: each a perpetual Terraform diff, and the public key's would be
   applied with ``UpdatePublicKey``, which moto lacks. Here they are kept and answered as sent.
14. CloudFront invalidations are idempotent by caller reference. CloudFront answers a second
   ``CreateInvalidation`` with a ``CallerReference`` it has seen (and the same paths) with the
   invalidation it made the first time; moto makes another. A repeated delete of an image
   version invalidates once (``media_pipeline.delivery.Invalidator``), as on AWS.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

_MOTO_PLACEHOLDER_SEQUENCER = "617f08299329d189"
_MOTO_PLACEHOLDER_EVENT_ID = "17793124-05d4-b198-2fde-7ededc63b103"
_applied = False
request_context = threading.local()  # .secure: did the current request arrive over TLS?
_lock = threading.Lock()
_last_sequencer = 0


def apply() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        _detach_event_source_mappings()
        _sequence_s3_events()
        _keep_queue_attributes()
        _report_eventbridge_configuration()
        _evaluate_secure_transport()
        _enforce_post_policies()
        _deliver_events_to_enabled_pattern_rules()
        _announce_delete_markers()
        _serialize_dynamodb_writes()
        _receive_in_linear_time()
        _dispatch_by_known_host()
        _serve_cache_policies()
        _keep_cloudfront_configuration()
        _invalidate_once_per_caller_reference()
        _applied = True


def _detach_event_source_mappings() -> None:
    from moto.awslambda.models import LambdaBackend
    from moto.dynamodb.models import dynamodb_backends
    from moto.sqs.models import sqs_backends

    create = LambdaBackend.create_event_source_mapping

    def create_detached(self: LambdaBackend, spec: dict[str, Any]) -> Any:
        mapping = create(self, spec)
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
        for table in dynamodb_backends[self.account_id][self.region_name].tables.values():
            table.lambda_event_source_mappings.pop(mapping.function_arn, None)
        return mapping

    LambdaBackend.create_event_source_mapping = create_detached  # type: ignore[method-assign]


def next_sequencer() -> str:
    """A hexadecimal sequencer that grows with every call, like S3's for writes of one key."""
    global _last_sequencer
    with _lock:
        _last_sequencer = max(_last_sequencer + 1, time.time_ns())
        return f"{_last_sequencer:X}"


def _sequence_s3_events() -> None:
    from moto.events.models import Rule

    send = Rule.send_to_targets

    def send_sequenced(
        self: Rule, original_event: dict[str, Any], transform_input: bool = True
    ) -> None:
        # moto builds one event dict and hands it to every rule in turn: fixing it in place on
        # the first call gives every rule (and target) the same id and sequencer, as on AWS.
        if original_event.get("source") == "aws.s3":
            obj = original_event.get("detail", {}).get("object", {})
            if obj.get("sequencer") == _MOTO_PLACEHOLDER_SEQUENCER:
                obj["sequencer"] = next_sequencer()
            if original_event.get("id") == _MOTO_PLACEHOLDER_EVENT_ID:
                original_event["id"] = str(uuid.uuid4())
        send(self, original_event, transform_input)

    Rule.send_to_targets = send_sequenced  # type: ignore[method-assign]


def rule_receives(rule: Any) -> bool:
    """Does an EventBridge rule receive events (ENABLED, with an event pattern), as on AWS?"""
    return rule.state == "ENABLED" and bool(rule.event_pattern.get_pattern())


def _deliver_events_to_enabled_pattern_rules() -> None:
    from moto.events.models import Rule

    send = Rule.send_to_targets

    def send_if_receiving(
        self: Rule, original_event: dict[str, Any], transform_input: bool = True
    ) -> None:
        if not rule_receives(self):
            return  # a schedule-only or disabled rule receives no events
        send(self, original_event, transform_input)

    Rule.send_to_targets = send_if_receiving  # type: ignore[method-assign]


def _keep_queue_attributes() -> None:
    from moto.sqs.models import Queue

    set_attributes = Queue._set_attributes
    attributes = Queue.attributes

    def set_attributes_keeping_policy(
        self: Queue, values: dict[str, Any], now: float | None = None
    ) -> None:
        policy = getattr(self, "policy", None)
        set_attributes(self, values, now)
        if "Policy" not in values:
            self.policy = policy

    def attributes_with_redrive_allow_policy(self: Queue) -> dict[str, Any]:
        result = attributes.fget(self)  # type: ignore[attr-defined]
        if result.get("RedriveAllowPolicy") is None:
            result.pop("RedriveAllowPolicy", None)
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    Queue.redrive_allow_policy = None  # type: ignore[attr-defined]
    Queue.BASE_ATTRIBUTES = [*Queue.BASE_ATTRIBUTES, "RedriveAllowPolicy"]
    Queue._set_attributes = set_attributes_keeping_policy  # type: ignore[method-assign]
    Queue.attributes = property(attributes_with_redrive_allow_policy)  # type: ignore[method-assign,assignment]


def _report_eventbridge_configuration() -> None:
    from moto.s3.responses import S3Response

    get = S3Response.get_bucket_notification

    def get_with_eventbridge(self: S3Response) -> Any:
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None:
            return get(self)
        serialized = self.serialized

        def with_eventbridge(action_result: Any) -> Any:
            action_result.result["EventBridgeConfiguration"] = {}
            return serialized(action_result)

        self.serialized = with_eventbridge  # type: ignore[method-assign]
        try:
            return get(self)
        finally:
            del self.serialized

    S3Response.get_bucket_notification = get_with_eventbridge  # type: ignore[method-assign]


def _evaluate_secure_transport() -> None:
    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
    from moto.s3.models import FakeBucket

    statement_permits = IAMPolicyStatement.is_action_permitted

    def statement_applies_only_when_its_conditions_hold(
        self: IAMPolicyStatement,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> Any:
        if self._statement.get("Condition") and not self._check_conditions(
            incoming_condition_values
        ):
            return PermissionResult.NEUTRAL
        return statement_permits(self, action, resource, principal, incoming_condition_values)

    IAMPolicyStatement.is_action_permitted = statement_applies_only_when_its_conditions_hold  # type: ignore[method-assign]

    def bool_matches(expected: str | list[str], actual: str) -> bool:
        values = expected if isinstance(expected, list) else [expected]
        return str(actual).lower() in {str(v).lower() for v in values}

    policy_conditions.CONDITION_OPERATIONS.setdefault("Bool", bool_matches)

    def get_permission(self: FakeBucket, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        secure = getattr(request_context, "secure", True)
        return IAMPolicy(self.policy.decode()).is_action_permitted(
            action,
            resource,
            incoming_condition_values={"aws:SecureTransport": "true" if secure else "false"},
        )

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


# Form fields S3 does not require a policy condition for.
_UNCOVERED_FIELDS = {"policy", "file", "x-amz-signature", "signature", "awsaccesskeyid"}


def post_policy_violation(
    fields: Mapping[str, str], size: int, bucket: str, now: datetime
) -> tuple[int, str, str] | None:
    """Why S3 would refuse this presigned POST: (status, error code, message), or None."""

    def denied(message: str) -> tuple[int, str, str]:
        return 403, "AccessDenied", f"Invalid according to Policy: {message}"

    form = {name.lower(): value for name, value in fields.items()}
    try:
        policy = json.loads(base64.b64decode(form["policy"], validate=True))
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        conditions = policy["conditions"]
    except (KeyError, ValueError, TypeError, AttributeError, binascii.Error):
        return denied("Policy could not be parsed.")
    if expiration <= now:
        return denied("Policy expired.")
    values = {**form, "bucket": bucket}
    covered: set[str] = set()
    for raw in conditions:
        condition = raw
        if isinstance(raw, dict) and len(raw) == 1:
            ((name, expected),) = raw.items()
            condition = ["eq", f"${name}", expected]
        if not isinstance(condition, list) or len(condition) != 3:
            return denied(f"Policy Condition could not be parsed: {json.dumps(condition)}")
        operator = str(condition[0]).lower()
        if operator == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size > high:
                return (
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size",
                )
            if size < low:
                return (
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                )
            continue
        name = str(condition[1]).removeprefix("$").lower()
        covered.add(name)
        actual, expected = values.get(name), str(condition[2])
        holds = (
            actual == expected
            if operator == "eq"
            else (operator == "starts-with" and actual is not None and actual.startswith(expected))
        )
        if not holds:
            return denied(f"Policy Condition failed: {json.dumps(condition)}")
    extra = sorted(
        n for n in form if n not in covered | _UNCOVERED_FIELDS and not n.startswith("x-ignore-")
    )
    if extra:
        return denied(f"Extra input fields: {', '.join(extra)}")
    return None


def _enforce_post_policies() -> None:
    from moto.s3.responses import S3Response

    post = S3Response._bucket_response_post

    def cors_headers(self: S3Response, request: Any, bucket_name: str) -> dict[str, str]:
        from moto.s3.exceptions import MissingBucket
        from moto.s3.utils import cors_matches_origin

        origin = request.headers.get("Origin")
        if not origin:
            return {}
        try:
            rules = self.backend.get_bucket(bucket_name).cors
        except MissingBucket:  # S3's own error answers
            return {}
        for rule in rules:
            if "POST" in (rule.allowed_methods or []) and cors_matches_origin(
                origin, rule.allowed_origins or []
            ):
                headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
                if rule.exposed_headers:
                    headers["Access-Control-Expose-Headers"] = ", ".join(rule.exposed_headers)
                return headers
        return {}

    def post_within_policy(self: S3Response, request: Any, bucket_name: str) -> Any:
        cors = cors_headers(self, request, bucket_name)
        form = getattr(self, "form_data", None) or {}
        if "policy" in form or "Policy" in form:
            body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
            problem = post_policy_violation(dict(form), len(body), bucket_name, datetime.now(UTC))
            if problem:
                status, code, message = problem
                xml = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                )
                return status, {"Content-Type": "application/xml", **cors}, xml
        status, headers, body = post(self, request, bucket_name)
        return status, {**headers, **cors}, body

    S3Response._bucket_response_post = post_within_policy  # type: ignore[method-assign]


@dataclass(frozen=True)
class _DeleteMarker:
    """What moto's S3 notifications read of a deleted object, for a delete marker."""

    name: str
    version_id: str
    size: int = 0
    etag: str = ""


def _announce_delete_markers() -> None:
    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    delete = S3Backend.delete_object

    def delete_announcing_markers(
        self: S3Backend,
        bucket_name: str,
        key_name: str,
        version_id: str | None = None,
        bypass: bool = False,
    ) -> Any:
        result = delete(self, bucket_name, key_name, version_id, bypass)
        _, meta = result
        if version_id is None and meta.get("delete-marker") == "true":
            notifications.send_event(
                self.account_id,
                notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
                self.get_bucket(bucket_name),
                _DeleteMarker(name=key_name, version_id=meta["version-id"]),
            )
        return result

    S3Backend.delete_object = delete_announcing_markers  # type: ignore[method-assign]


# The DynamoDB actions that change items. The locks are taken around moto's request handler, not
# its backend: the handler reads the old item for ``ReturnValues`` before the backend writes.
_DYNAMODB_WRITES = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)
# Keyed per item; the others take the exclusive mode (see patch 9 above).
_KEYED_WRITES = frozenset({"put_item", "update_item", "delete_item", "batch_write_item"})

ItemKey = tuple[str, tuple[tuple[str, str], ...]]  # (table name, ((attribute, value), ...))


def _key_value(value: Any) -> str:
    """One attribute value of a primary key as text that is equal for equal DynamoDB values
    (numbers are compared as numbers: ``1`` and ``1.0`` are one item)."""
    (kind, raw), *rest = value.items()
    if rest:
        raise ValueError("an attribute value has one type")
    if kind == "N":
        raw = format(Decimal(raw).normalize(), "f")
    elif not isinstance(raw, str):
        raw = json.dumps(raw, sort_keys=True)
    return f"{kind}:{raw}"


def item_key(table: Any, attributes: Mapping[str, Any]) -> ItemKey:
    """The lock key of the item whose attributes (or ``Key``) are given, in moto's ``table``."""
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return table.name, tuple((name, _key_value(attributes[name])) for name in names)


def write_keys(backend: Any, action: str, body: Mapping[str, Any]) -> list[ItemKey] | None:
    """The items a DynamoDB write request writes, from the request and the tables' key schemas;
    None when that cannot be told (PartiQL, a malformed request, a table that does not exist)."""
    try:
        if action == "put_item":
            return [item_key(backend.get_table(body["TableName"]), body["Item"])]
        if action in ("update_item", "delete_item"):
            return [item_key(backend.get_table(body["TableName"]), body["Key"])]
        if action == "batch_write_item":
            keys = []
            for name, requests in body["RequestItems"].items():
                table = backend.get_table(name)
                for request in requests:
                    if "PutRequest" in request:
                        keys.append(item_key(table, request["PutRequest"]["Item"]))
                    else:
                        keys.append(item_key(table, request["DeleteRequest"]["Key"]))
            return keys
        if action == "transact_write_items":
            keys = []
            for entry in body["TransactItems"]:
                (kind, operation), *_ = entry.items()
                table = backend.get_table(operation["TableName"])
                keys.append(item_key(table, operation["Item" if kind == "Put" else "Key"]))
            return keys
    except Exception:  # moto answers the request's error itself
        return None
    return None


@dataclass
class _Held:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0  # holding or waiting


class ItemLocks:
    """A lock per item, behind a gate with a shared and an exclusive side.

    ``items(keys)`` takes the shared side (many at once), then each item's lock in sorted order
    (two writers of overlapping sets of items cannot deadlock). ``exclusive()`` waits until no
    keyed write is in progress and keeps new ones out while it runs; a waiting exclusive writer
    goes before keyed writers that arrive after it, so it is not starved. An item's lock exists
    while a writer holds or waits for it, then is dropped.
    """

    def __init__(self) -> None:
        self._gate = threading.Condition()
        self._shared = 0  # keyed writes inside the gate
        self._exclusive = False
        self._exclusive_waiting = 0
        self._held: dict[ItemKey, _Held] = {}

    @property
    def live(self) -> int:
        """Item locks in existence (held or waited for)."""
        with self._gate:
            return len(self._held)

    @contextmanager
    def items(self, keys: Iterable[ItemKey]) -> Iterator[None]:
        with self._gate:
            while self._exclusive or self._exclusive_waiting:
                self._gate.wait()
            self._shared += 1
            held = []
            for key in sorted(set(keys)):
                entry = self._held.setdefault(key, _Held())
                entry.users += 1
                held.append((key, entry))
        taken: list[_Held] = []
        try:
            for _, entry in held:
                entry.lock.acquire()
                taken.append(entry)
            yield
        finally:
            for entry in reversed(taken):
                entry.lock.release()
            with self._gate:
                for key, entry in held:
                    entry.users -= 1
                    if entry.users == 0:
                        del self._held[key]
                self._shared -= 1
                self._gate.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._gate:
            self._exclusive_waiting += 1
            while self._exclusive or self._shared:
                self._gate.wait()
            self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._gate:
                self._exclusive = False
                self._gate.notify_all()


# Called, when set, for every DynamoDB write while its locks are held:
# observer(handler, action_name, keys or None, carry_out) -> the handler's result.
# devstack/usage.py sets it to measure capacity units from the item before and after.
WriteObserver = Callable[[Any, str, "list[ItemKey] | None", Callable[[], Any]], Any]
_write_observer: WriteObserver | None = None


def observe_dynamodb_writes(observer: WriteObserver | None) -> None:
    global _write_observer
    _write_observer = observer


def _serialize_dynamodb_writes() -> None:
    import functools

    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodb.responses import DynamoHandler

    locks = ItemLocks()

    def per_item(name: str, action: Any) -> Any:
        @functools.wraps(action)
        def write(self: DynamoHandler) -> Any:
            keys = write_keys(self.dynamodb_backend, name, self.body)
            keyed = name in _KEYED_WRITES and keys is not None
            with locks.items(keys or ()) if keyed else locks.exclusive():
                observer = _write_observer
                if observer is None:
                    return action(self)
                return observer(self, name, keys, lambda: action(self))

        return write

    for name in _DYNAMODB_WRITES:
        setattr(DynamoHandler, name, per_item(name, getattr(DynamoHandler, name)))

    add = StreamShard.add
    appending = threading.Lock()

    def add_atomically(self: StreamShard, old: Any, new: Any) -> None:
        with appending:
            add(self, old, new)

    StreamShard.add = add_atomically  # type: ignore[method-assign]


def _receive_in_linear_time() -> None:
    from moto.sqs.models import Message, SQSBackend

    def retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
        period = self.get_queue(queue_name).message_retention_period
        return int(period) + message.sent_timestamp / 1000 > time.time()  # type: ignore[operator]

    def visible(self: Message) -> bool:
        return time.time() * 1000 > self.visible_at

    def delayed(self: Message) -> bool:
        return time.time() * 1000 < self.delayed_until

    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
    Message.visible = property(visible)  # type: ignore[method-assign,assignment]
    Message.delayed = property(delayed)  # type: ignore[method-assign,assignment]


def _dispatch_by_known_host() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    find = DomainDispatcherApplication.get_backend_for_host

    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        if host is None:
            return find(self, host)
        known: dict[str, Any] = self.__dict__.setdefault("_backend_by_host", {})
        if host not in known:
            known[host] = find(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def _serve_cache_policies() -> None:
    from moto.cloudfront import urls
    from moto.cloudfront.exceptions import CloudFrontException
    from moto.cloudfront.models import CloudFrontBackend
    from moto.cloudfront.responses import CloudFrontResponse
    from moto.core.responses import ActionResult, EmptyResult
    from moto.moto_api._internal import mock_random

    class NoSuchCachePolicy(CloudFrontException):
        code = 404

        def __init__(self) -> None:
            super().__init__("NoSuchCachePolicy", "The cache policy does not exist.")

    def policies(backend: CloudFrontBackend) -> dict[str, dict[str, Any]]:
        return backend.__dict__.setdefault("_cache_policies", {})

    def stored(backend: CloudFrontBackend, policy_id: str) -> dict[str, Any]:
        policy = policies(backend).get(policy_id)
        if policy is None:
            raise NoSuchCachePolicy
        return policy

    def answer(policy: dict[str, Any], location: bool = False) -> ActionResult:
        result: dict[str, Any] = {
            "CachePolicy": {
                "Id": policy["Id"],
                "LastModifiedTime": policy["LastModifiedTime"],
                "CachePolicyConfig": policy["CachePolicyConfig"],
            },
            "ETag": policy["ETag"],
        }
        if location:
            result["Location"] = (
                f"https://cloudfront.amazonaws.com/2020-05-31/cache-policy/{policy['Id']}"
            )
        return ActionResult(result)

    def create_cache_policy(self: CloudFrontResponse) -> ActionResult:
        policy = {
            "Id": str(mock_random.uuid4()),
            "LastModifiedTime": datetime.now(UTC),
            "CachePolicyConfig": self._get_param("CachePolicyConfig", {}),
            "ETag": mock_random.get_random_hex(14).upper(),
        }
        policies(self.backend)[policy["Id"]] = policy
        return answer(policy, location=True)

    def get_cache_policy(self: CloudFrontResponse) -> ActionResult:
        return answer(stored(self.backend, self._get_param("Id")))

    def get_cache_policy_config(self: CloudFrontResponse) -> ActionResult:
        policy = stored(self.backend, self._get_param("Id"))
        return ActionResult(
            {"CachePolicyConfig": policy["CachePolicyConfig"], "ETag": policy["ETag"]}
        )

    def update_cache_policy(self: CloudFrontResponse) -> ActionResult:
        policy = stored(self.backend, self._get_param("Id"))
        policy["CachePolicyConfig"] = self._get_param("CachePolicyConfig", {})
        policy["LastModifiedTime"] = datetime.now(UTC)
        policy["ETag"] = mock_random.get_random_hex(14).upper()
        return answer(policy)

    def delete_cache_policy(self: CloudFrontResponse) -> ActionResult:
        stored(self.backend, self._get_param("Id"))
        del policies(self.backend)[self._get_param("Id")]
        return EmptyResult()

    def list_cache_policies(self: CloudFrontResponse) -> ActionResult:
        items = [
            {"Type": "custom", "CachePolicy": answer(p).result["CachePolicy"]}  # type: ignore[attr-defined]
            for p in policies(self.backend).values()
        ]
        return ActionResult(
            {"CachePolicyList": {"MaxItems": 100, "Quantity": len(items), "Items": items or None}}
        )

    for handler in (
        create_cache_policy,
        get_cache_policy,
        get_cache_policy_config,
        update_cache_policy,
        delete_cache_policy,
        list_cache_policies,
    ):
        setattr(CloudFrontResponse, handler.__name__, handler)
    urls.url_paths.update(
        {
            "{0}/2020-05-31/cache-policy$": CloudFrontResponse.dispatch,
            "{0}/2020-05-31/cache-policy/(?P<policy_id>[^/]+)$": CloudFrontResponse.dispatch,
            "{0}/2020-05-31/cache-policy/(?P<policy_id>[^/]+)/config$": CloudFrontResponse.dispatch,
        }
    )


def _keep_cloudfront_configuration() -> None:
    from moto.cloudfront import models
    from moto.cloudfront.responses import CloudFrontResponse
    from moto.core.responses import ActionResult

    origin_init = models.Origin.__init__

    def origin_with_access_control(self: models.Origin, origin: dict[str, Any]) -> None:
        origin_init(self, origin)
        self.origin_access_control_id = origin.get("OriginAccessControlId") or ""

    behaviour_init = models.DefaultCacheBehaviour.__init__

    def behaviour_as_sent(self: models.DefaultCacheBehaviour, config: dict[str, Any]) -> None:
        behaviour_init(self, config)
        if config.get("CachePolicyId") and "ForwardedValues" not in config:
            self.forwarded_values = None  # a cache policy replaces them

    certificate_init = models.ViewerCertificate.__init__

    def certificate_as_sent(self: models.ViewerCertificate, config: dict[str, Any]) -> None:
        certificate_init(self, config)
        self.ssl_support_method = config.get("SSLSupportMethod")  # none with the default one

    create_public_key = CloudFrontResponse.create_public_key

    def public_key_with_comment(self: CloudFrontResponse) -> ActionResult:
        result = create_public_key(self)
        key = result.result["PublicKey"]  # type: ignore[attr-defined]
        key.comment = (self._get_param("PublicKeyConfig") or {}).get("Comment") or ""
        return result

    create_key_group = CloudFrontResponse.create_key_group

    def key_group_with_comment(self: CloudFrontResponse) -> ActionResult:
        result = create_key_group(self)
        group = result.result["KeyGroup"]  # type: ignore[attr-defined]
        group.comment = self._get_param("KeyGroupConfig.Comment") or ""
        return result

    def key_group_config(self: models.KeyGroup) -> dict[str, Any]:
        config = {"Items": self.items, "Name": self.name}
        if getattr(self, "comment", ""):
            config["Comment"] = self.comment
        return config

    models.Origin.__init__ = origin_with_access_control  # type: ignore[method-assign]
    models.DefaultCacheBehaviour.__init__ = behaviour_as_sent  # type: ignore[method-assign]
    models.ViewerCertificate.__init__ = certificate_as_sent  # type: ignore[method-assign]
    models.KeyGroup.key_group_config = property(key_group_config)  # type: ignore[method-assign,assignment]
    CloudFrontResponse.create_public_key = public_key_with_comment  # type: ignore[method-assign]
    CloudFrontResponse.create_key_group = key_group_with_comment  # type: ignore[method-assign]


def _invalidate_once_per_caller_reference() -> None:
    from moto.cloudfront import models
    from moto.cloudfront.exceptions import CloudFrontException

    create = models.CloudFrontBackend.create_invalidation

    def create_once(
        self: models.CloudFrontBackend, dist_id: str, paths: list[str], caller_ref: str
    ) -> models.Invalidation:
        for made in self.invalidations.get(dist_id) or []:
            if made.caller_ref == caller_ref:
                if sorted(made.paths) != sorted(paths):
                    raise CloudFrontException(
                        "InvalidationBatchAlreadyExists",
                        f"An invalidation with caller reference {caller_ref} exists already",
                    )
                return made
        return create(self, dist_id, paths, caller_ref)

    models.CloudFrontBackend.create_invalidation = create_once  # type: ignore[method-assign]
