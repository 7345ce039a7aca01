"""EventBridge scheduled rules that target Lambda functions, fired the way EventBridge fires them.

moto stores rules and targets but never fires a schedule. On every refresh the local runtime
reads the ENABLED rules of the default event bus that have a ``ScheduleExpression``, and their
targets, and hands them to :class:`Scheduler`, which invokes each Lambda target at the rule's
rate through the runtime's own ``invoke``, asynchronously (its own thread, as EventBridge's
asynchronous Invoke), recorded in the invocation journal with the source ``events`` and the
rule's ARN as the item. The payload is EventBridge's Scheduled Event (``detail-type: "Scheduled
Event"``, ``source: "aws.events"``, ``resources: [rule ARN]``, ``detail: {}``), or the target's
``Input``, verbatim, when it has one.

Supported, and what differs from AWS:

* ``rate(N minute|minutes|hour|hours|day|days)``, with AWS's rule that 1 takes the singular and
  more the plural (moto accepts ``rate(1 minutes)``; AWS refuses it, so it is not fired here
  either, with a warning). The first invocation comes one period after the runtime first
  sees the rule, then every period, on a monotonic clock; periods missed (a suspended laptop)
  are not caught up. EventBridge only promises minute granularity; this is more punctual.
* ``cron(...)`` is **not** supported: such a rule is logged and listed in
  ``/_devstack/status`` as not fired, never fired on a guess.
* Lambda targets only (``arn:aws:lambda:...:function:...``); other targets of scheduled rules,
  and targets with ``InputPath`` or ``InputTransformer``, are logged and not fired.
* No asynchronous-invocation retries (Lambda retries a failed async invocation twice, a minute
  or more apart), no DLQ or destinations, no dead-letter for a throttled event: each firing is
  one invocation, its result in the journal.
* A disabled, deleted or changed rule or target takes effect on the next refresh (a second);
  changing a rule's expression restarts its period.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devstack.sandbox import Result

log = logging.getLogger("devstack.schedules")

SOURCE = "events"  # the journal's source for scheduled invocations
_RATE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}

Invoke = Callable[[str, bytes, str, list[str]], Result]
Dispatch = Callable[..., None]


class UnsupportedSchedule(ValueError):
    """A valid schedule expression that the local runtime does not fire (``cron(...)``)."""


def parse_rate(expression: str) -> float:
    """Seconds between firings of a ``rate(...)`` expression, by AWS's rules.

    Raises :class:`UnsupportedSchedule` for ``cron(...)`` and ValueError for anything AWS
    would refuse.
    """
    expression = expression.strip()
    if expression.startswith("cron("):
        raise UnsupportedSchedule(f"{expression}: cron() is not supported by the local stack")
    match = _RATE.match(expression)
    if not match:
        raise ValueError(f"{expression!r} is not a rate(value unit) expression")
    value, unit = int(match.group(1)), match.group(2)
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise ValueError(f"{expression}: the unit must be minute(s), hour(s) or day(s)")
    if value <= 0:
        raise ValueError(f"{expression}: the value must be a positive number")
    if (value == 1) != (unit == singular):
        raise ValueError(
            f"{expression}: AWS takes the singular unit for 1 and the plural for more "
            f"(rate(1 {singular}), rate({max(value, 2)} {singular}s))"
        )
    return float(value * _UNITS[singular])


@dataclass(frozen=True)
class ScheduledTarget:
    """One target of one scheduled rule, as read from the EventBridge API."""

    rule_arn: str
    rule_name: str
    target_id: str
    target_arn: str
    expression: str
    input: str | None
    period: float | None  # seconds; None when it is not fired
    problem: str | None  # why it is not fired

    @property
    def key(self) -> str:
        return f"{self.rule_name}/{self.target_id}"

    @property
    def function(self) -> str | None:
        parts = self.target_arn.split(":")
        if len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
            return parts[6]
        return None

    @classmethod
    def from_api(cls, rule: dict[str, Any], target: dict[str, Any]) -> ScheduledTarget:
        expression = rule["ScheduleExpression"]
        period: float | None = None
        problem: str | None = None
        try:
            period = parse_rate(expression)
        except ValueError as error:  # UnsupportedSchedule too
            problem = str(error)
        arn = target.get("Arn", "")
        if problem is None:
            if arn.split(":")[2:3] != ["lambda"] or ":function:" not in arn:
                problem = f"target {arn} is not a Lambda function: only Lambda targets are fired"
            elif target.get("InputPath") or target.get("InputTransformer"):
                problem = "InputPath and InputTransformer are not supported: only Input"
        if problem is not None:
            period = None
        return cls(
            rule_arn=rule["Arn"],
            rule_name=rule["Name"],
            target_id=target["Id"],
            target_arn=arn,
            expression=expression,
            input=target.get("Input"),
            period=period,
            problem=problem,
        )


def scheduled_targets(
    rules: list[dict[str, Any]], targets_by_rule: dict[str, list[dict[str, Any]]]
) -> list[ScheduledTarget]:
    """The targets to schedule: those of the ENABLED rules of the default bus with a schedule."""
    found = []
    for rule in rules:
        if rule.get("State") != "ENABLED" or not rule.get("ScheduleExpression"):
            continue
        if rule.get("EventBusName", "default") != "default":
            continue  # EventBridge allows schedules on the default bus only
        found += [ScheduledTarget.from_api(rule, t) for t in targets_by_rule.get(rule["Arn"], [])]
    return found


def scheduled_event(target: ScheduledTarget, when: datetime) -> dict[str, Any]:
    """EventBridge's Scheduled Event for one firing of the target's rule."""
    _, _, _, region, account, _ = target.rule_arn.split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [target.rule_arn],
        "detail": {},
    }


@dataclass
class _Entry:
    target: ScheduledTarget
    next_due: float | None
    fired: int = 0
    last_fired: str | None = None
    last_error: str | None = None


def _in_thread(function: Callable[..., Any], *args: Any) -> None:
    threading.Thread(target=function, args=args, name="schedule", daemon=True).start()


class Scheduler:
    """Fires scheduled targets on time. ``clock`` (monotonic seconds), ``wall`` (the event's
    time) and ``dispatch`` (how an invocation is started: a thread each) are injectable."""

    MAX_WAIT = 1.0  # the firing thread looks again at least this often

    def __init__(
        self,
        invoke: Invoke,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        dispatch: Dispatch = _in_thread,
    ) -> None:
        self._invoke = invoke
        self._clock = clock
        self._wall = wall
        self._dispatch = dispatch
        self._entries: dict[str, _Entry] = {}
        self._reported: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reconciling ------------------------------------------------------------------------

    def update(
        self, rules: list[dict[str, Any]], targets_by_rule: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Reconcile with what the EventBridge API lists (``ListRules``, ``ListTargetsByRule``
        by rule ARN): new targets start their period now, removed ones stop."""
        wanted = {t.key: t for t in scheduled_targets(rules, targets_by_rule)}
        now = self._clock()
        with self._lock:
            for key in set(self._entries) - set(wanted):
                log.info("schedule %s (%s) removed", key, self._entries[key].target.expression)
                del self._entries[key]
            for key, target in wanted.items():
                entry = self._entries.get(key)
                if entry is not None and entry.target.period == target.period:
                    if entry.target.problem != target.problem:
                        self._report(target)
                    entry.target = target  # same timing; the input or function may have changed
                    continue
                self._entries[key] = _Entry(
                    target, None if target.period is None else now + target.period
                )
                self._report(target)
        self._wake.set()

    def _report(self, target: ScheduledTarget) -> None:
        if target.problem is None:
            log.info(
                "schedule %s (%s): invokes %s every %.0f s",
                target.key,
                target.expression,
                target.function,
                target.period,
            )
        elif (target.key, target.problem) not in self._reported:
            self._reported.add((target.key, target.problem))
            log.warning("schedule %s is not fired: %s", target.key, target.problem)

    # -- firing -----------------------------------------------------------------------------

    def tick(self) -> float | None:
        """Fire what is due now; the seconds until the next firing (None: nothing scheduled)."""
        now = self._clock()
        due: list[ScheduledTarget] = []
        with self._lock:
            for entry in self._entries.values():
                period = entry.target.period
                if entry.next_due is None or period is None or entry.next_due > now:
                    continue
                due.append(entry.target)
                entry.fired += 1
                entry.next_due += period
                if entry.next_due <= now:  # periods missed (suspended) are not caught up
                    entry.next_due = now + period
            upcoming = [e.next_due for e in self._entries.values() if e.next_due is not None]
        for target in due:
            self._dispatch(self._fire, target)
        return min(upcoming) - now if upcoming else None

    def _fire(self, target: ScheduledTarget) -> None:
        when = self._wall()
        if target.input is not None:
            payload = target.input.encode()
        else:
            payload = json.dumps(scheduled_event(target, when)).encode()
        error: str | None
        try:
            result = self._invoke(target.function or "", payload, SOURCE, [target.rule_arn])
            detail = result.payload[:500].decode(errors="replace")
            error = None if result.ok else f"{result.error}: {detail}"
        except Exception as exc:  # a firing thread must not die silently
            log.exception("schedule %s: invoking %s failed", target.key, target.function)
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            entry = self._entries.get(target.key)
            if entry is not None:
                entry.last_fired = when.isoformat(timespec="seconds")
                entry.last_error = error

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Look at the clock again now (after an injected clock moved, in tests)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self.tick()
            except Exception:  # keep firing the others
                log.exception("schedules: tick failed")
                wait = None
            if self._stop.is_set():
                return
            self._wake.wait(self.MAX_WAIT if wait is None else min(max(wait, 0.0), self.MAX_WAIT))

    # -- introspection ----------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        now = self._clock()
        with self._lock:
            return {
                key: {
                    "rule": e.target.rule_arn,
                    "expression": e.target.expression,
                    "function": e.target.function,
                    "fired": e.fired,
                    "next_in_s": None if e.next_due is None else round(e.next_due - now, 1),
                    "last_fired": e.last_fired,
                    "last_error": e.last_error,
                    "not_fired": e.target.problem,
                }
                for key, e in self._entries.items()
            }
