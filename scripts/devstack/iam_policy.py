"""IAM identity-policy evaluation, the way AWS evaluates one principal's policies for one request.

Pure functions, no moto: ``evaluate(policies, action, resource, context)`` says whether the
policies allow the action on the resource (an explicit ``Deny`` wins over any ``Allow``; without
an ``Allow`` the answer is an implicit deny) and which statements decided. It covers what AWS's
policy language says of one identity policy: ``Action``/``NotAction`` (case-insensitive, ``*``
and ``?`` wildcards), ``Resource``/``NotResource`` (case-sensitive wildcards), and ``Condition``
with the string, ARN, boolean, numeric, date, IP-less operators, ``...IfExists``, ``Null`` and
the ``ForAnyValue:``/``ForAllValues:`` set qualifiers, against the request context it is given.
A condition operator it does not know makes its statement *fail closed*: an ``Allow`` does not
apply and a ``Deny`` does, and the reason says so.

Not here (devstack/iam.py states what the embedded stack checks and what it cannot): policy
variables (``${aws:username}``), permission boundaries, session policies, SCPs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

Context = Mapping[str, str | list[str]]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # "allowed", "explicit deny", "no identity-based policy allows"
    reason: str
    # (policy name, statement Sid or index) of the statements that allowed or denied
    statements: tuple[tuple[str, str], ...] = field(default=())


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` exactly one."""
    return _wildcard(pattern, ignore_case).match(value) is not None


def action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(matches(p, action, ignore_case=True) for p in patterns)


def resource_matches(patterns: Iterable[str], resource: str) -> bool:
    return any(matches(p, resource) for p in patterns)


@lru_cache(maxsize=256)
def parse(document: str) -> tuple[dict[str, Any], ...]:
    """A policy document's statements (cached: roles' policies are read for every request)."""
    policy = json.loads(document)
    return tuple(_as_list(policy.get("Statement")))


class UnsupportedCondition(ValueError):
    pass


def _to_number(value: str) -> float:
    return float(value)


def _to_date(value: str) -> float:
    try:
        return float(value)  # epoch seconds
    except ValueError:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _bool(value: str) -> str:
    return str(value).lower()


# operator -> (compare(expected, actual) -> bool, negated)
def _string_equals(e: str, a: str) -> bool:
    return a == e


def _string_equals_ic(e: str, a: str) -> bool:
    return a.lower() == e.lower()


def _string_like(e: str, a: str) -> bool:
    return matches(e, a)


def _arn_like(e: str, a: str) -> bool:
    # ARN operators compare each of the six colon-separated parts; a wildcard does not cross one
    ep, ap = e.split(":", 5), a.split(":", 5)
    if len(ep) != 6 or len(ap) != 6:
        return False
    return all(matches(x, y) for x, y in zip(ep, ap, strict=True))


_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ic, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ic, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda e, a: _bool(a) == _bool(e), False),
    "NumericEquals": (lambda e, a: _to_number(a) == _to_number(e), False),
    "NumericNotEquals": (lambda e, a: _to_number(a) == _to_number(e), True),
    "NumericLessThan": (lambda e, a: _to_number(a) < _to_number(e), False),
    "NumericLessThanEquals": (lambda e, a: _to_number(a) <= _to_number(e), False),
    "NumericGreaterThan": (lambda e, a: _to_number(a) > _to_number(e), False),
    "NumericGreaterThanEquals": (lambda e, a: _to_number(a) >= _to_number(e), False),
    "DateEquals": (lambda e, a: _to_date(a) == _to_date(e), False),
    "DateNotEquals": (lambda e, a: _to_date(a) == _to_date(e), True),
    "DateLessThan": (lambda e, a: _to_date(a) < _to_date(e), False),
    "DateLessThanEquals": (lambda e, a: _to_date(a) <= _to_date(e), False),
    "DateGreaterThan": (lambda e, a: _to_date(a) > _to_date(e), False),
    "DateGreaterThanEquals": (lambda e, a: _to_date(a) >= _to_date(e), False),
}


def _context_values(context: Context, key: str) -> list[str] | None:
    for name, value in context.items():
        if name.lower() == key.lower():
            return [str(v) for v in _as_list(value)]
    return None


def condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool:
    """One condition (operator, context key, expected values) against the request context."""
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    actual = _context_values(context, key)
    expected_values = [str(v) for v in _as_list(expected)]
    if name == "Null":
        present = actual is not None and len(actual) > 0
        return any((_bool(v) == "true") != present for v in expected_values)
    if name not in _OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedCondition(f"condition operator {operator} is not evaluated here")
    compare, negated = _OPERATORS[name]
    if actual is None or not actual:
        if if_exists or qualifier == "ForAllValues":
            return True
        return negated  # a missing key: a positive operator fails, a negated one holds

    def one(value: str) -> bool:
        hit = any(compare(e, value) for e in expected_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in actual)
    return any(one(v) for v in actual)


def _conditions_hold(conditions: Mapping[str, Any], context: Context) -> bool:
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            if not condition_holds(operator, key, expected, context):
                return False
    return True


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Context
) -> bool:
    """Does the statement's Action/NotAction, Resource/NotResource and Condition cover it?"""
    if "NotAction" in statement:
        if action_matches(_as_list(statement["NotAction"]), action):
            return False
    elif not action_matches(_as_list(statement.get("Action")), action):
        return False
    if "NotResource" in statement:
        if resource_matches(_as_list(statement["NotResource"]), resource):
            return False
    elif not resource_matches(_as_list(statement.get("Resource")), resource):
        return False
    conditions = statement.get("Condition") or {}
    return _conditions_hold(conditions, context)


def evaluate(
    policies: Iterable[tuple[str, str]], action: str, resource: str, context: Context
) -> Decision:
    """``policies``: (name, JSON document) of every identity policy of the principal."""
    allowing: list[tuple[str, str]] = []
    for name, document in policies:
        for index, statement in enumerate(parse(document)):
            sid = str(statement.get("Sid") or index)
            effect = statement.get("Effect")
            try:
                applies = statement_applies(statement, action, resource, context)
            except UnsupportedCondition as error:
                if effect == "Deny":
                    return Decision(False, f"explicit deny ({error})", ((name, sid),))
                continue  # fail closed: an Allow it cannot evaluate does not allow
            if not applies:
                continue
            if effect == "Deny":
                return Decision(False, "explicit deny", ((name, sid),))
            if effect == "Allow":
                allowing.append((name, sid))
    if allowing:
        return Decision(True, "allowed", tuple(allowing))
    return Decision(False, "no identity-based policy allows", ())
