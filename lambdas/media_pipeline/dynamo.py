"""DynamoDB's wire format and conditional updates, for the low-level client the stores use.

Conditions are built with boto3's own ``boto3.dynamodb.conditions`` (``Attr("status").eq(...)``),
which names every attribute through a placeholder (``key``, ``size`` and ``status`` are reserved
words); :func:`update` turns SET / SET-if-absent / REMOVE plus such a condition into the
arguments of one ``UpdateItem``. :func:`batch_get` and :func:`batch_write` send any number of
keys or requests in DynamoDB's batches, retrying what comes back unprocessed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from media_pipeline.values import to_plain

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

BATCH_GET_MAX = 100  # keys per BatchGetItem
BATCH_WRITE_MAX = 25  # requests per BatchWriteItem
_BATCH_ATTEMPTS = 8  # tries of one batch's unprocessed keys or requests, backing off


def to_attribute(value: Any) -> dict[str, Any]:
    """Serialise a JSON-like value for DynamoDB (floats become Decimals)."""
    return _serializer.serialize(_decimalise(value))


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item for PutItem: every attribute but those that are None."""
    return {name: to_attribute(value) for name, value in values.items() if value is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Deserialise a DynamoDB item into plain Python (Decimals become int or float)."""
    return {k: to_plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _decimalise(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decimalise(v) for v in value]
    return value


def condition(expression: ConditionBase) -> dict[str, Any]:
    """``ConditionExpression`` and its placeholders, for a PutItem or DeleteItem."""
    return _built("ConditionExpression", expression, is_key_condition=False)


def key_condition(expression: ConditionBase) -> dict[str, Any]:
    """``KeyConditionExpression`` (from ``boto3.dynamodb.conditions.Key``) and its placeholders,
    for a Query."""
    return _built("KeyConditionExpression", expression, is_key_condition=True)


def _built(argument: str, expression: ConditionBase, *, is_key_condition: bool) -> dict[str, Any]:
    built = ConditionExpressionBuilder().build_expression(
        expression, is_key_condition=is_key_condition
    )
    arguments: dict[str, Any] = {
        argument: built.condition_expression,
        "ExpressionAttributeNames": built.attribute_name_placeholders,
    }
    if built.attribute_value_placeholders:  # DynamoDB refuses an empty map
        arguments["ExpressionAttributeValues"] = {
            placeholder: to_attribute(value)
            for placeholder, value in built.attribute_value_placeholders.items()
        }
    return arguments


def update(
    *,
    set_: Mapping[str, Any],
    when: ConditionBase,
    set_if_absent: Mapping[str, Any] | None = None,
    remove: Iterable[str] = (),
) -> dict[str, Any]:
    """The expression arguments of one conditional ``UpdateItem``: ``set_`` (attributes set),
    ``set_if_absent`` (set only where the item has none yet), ``remove``, done only ``when``
    the condition holds."""
    arguments = condition(when)
    names: dict[str, str] = arguments["ExpressionAttributeNames"]
    values: dict[str, Any] = arguments.setdefault("ExpressionAttributeValues", {})

    def name(attribute: str) -> str:
        placeholder = f"#u{len(names)}"
        names[placeholder] = attribute
        return placeholder

    def value(raw: Any) -> str:
        placeholder = f":u{len(values)}"
        values[placeholder] = to_attribute(raw)
        return placeholder

    assignments = [f"{name(n)} = {value(v)}" for n, v in set_.items()]
    for attribute, raw in (set_if_absent or {}).items():
        placeholder = name(attribute)
        assignments.append(f"{placeholder} = if_not_exists({placeholder}, {value(raw)})")
    expression = "SET " + ", ".join(assignments)
    removed = [name(n) for n in remove]
    if removed:
        expression += " REMOVE " + ", ".join(removed)
    return {"UpdateExpression": expression, **arguments}


def batch_get(
    client: Any, table: str, keys: list[dict[str, Any]], **options: Any
) -> list[dict[str, Any]]:
    """The items (wire format) of those ``keys`` that exist: BatchGetItem, BATCH_GET_MAX keys at
    a time, unprocessed keys tried again after a growing wait; ``options`` go with every batch
    (``ConsistentRead``, ``ProjectionExpression``...)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_MAX):
        request = {table: {"Keys": keys[start : start + BATCH_GET_MAX], **options}}
        for attempt in range(_BATCH_ATTEMPTS):
            response = client.batch_get_item(RequestItems=request)
            found += response.get("Responses", {}).get(table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            _back_off(attempt)
        else:
            raise RuntimeError(f"BatchGetItem left keys unprocessed: {request}")
    return found


def batch_write(client: Any, table: str, requests: Iterable[dict[str, Any]]) -> None:
    """BatchWriteItem of ``requests`` (``PutRequest`` / ``DeleteRequest``), BATCH_WRITE_MAX at a
    time, unprocessed ones tried again after a growing wait."""
    pending = list(requests)
    for start in range(0, len(pending), BATCH_WRITE_MAX):
        request = {table: pending[start : start + BATCH_WRITE_MAX]}
        for attempt in range(_BATCH_ATTEMPTS):
            response = client.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                break
            _back_off(attempt)
        else:
            raise RuntimeError(f"BatchWriteItem left items unprocessed: {request}")


def _back_off(attempt: int) -> None:
    """DynamoDB's advice for unprocessed batch items: wait, growing, then try them again."""
    time.sleep(min(0.05 * 2**attempt, 1.0))
