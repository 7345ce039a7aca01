"""The embedded stack's EventBridge schedules: rate expressions and when targets fire."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from devstack.sandbox import Result
from devstack.schedules import (
    SOURCE,
    Scheduler,
    UnsupportedSchedule,
    parse_rate,
    scheduled_targets,
)

RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/reconcile"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:media-pipeline-reconciler"
WHEN = datetime(2026, 11, 23, 10, 0, 5, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
        (" rate( 2 minutes ) ", 120),
    ],
)
def test_rate_expressions_give_their_period_in_seconds(expression, seconds):
    assert parse_rate(expression) == seconds


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",  # AWS: 1 takes the singular ...
        "rate(5 minute)",  # ... and more the plural (moto accepts both)
        "rate(0 minutes)",
        "rate(minutes)",
        "rate(5 seconds)",
        "rate(2 weeks)",
        "rate(-1 minutes)",
        "every 5 minutes",
        "",
    ],
)
def test_rate_expressions_that_aws_refuses_are_refused(expression):
    with pytest.raises(ValueError):
        parse_rate(expression)


def test_cron_is_reported_as_unsupported_not_invalid():
    with pytest.raises(UnsupportedSchedule, match="cron"):
        parse_rate("cron(0 12 * * ? *)")


def rule(name="reconcile", expression="rate(1 minute)", state="ENABLED", **extra):
    return {
        "Name": name,
        "Arn": f"arn:aws:events:us-east-1:123456789012:rule/{name}",
        "State": state,
        "ScheduleExpression": expression,
        "EventBusName": "default",
        **extra,
    }


def target(target_id="reconciler", arn=FUNCTION_ARN, **extra):
    return {"Id": target_id, "Arn": arn, **extra}


def test_only_enabled_scheduled_rules_of_the_default_bus_are_scheduled():
    rules = [
        rule("on"),
        rule("off", state="DISABLED"),
        {**rule("pattern"), "ScheduleExpression": None, "EventPattern": "{}"},
        rule("custom-bus", EventBusName="other"),
    ]
    targets = {r["Arn"]: [target()] for r in rules}
    assert [t.rule_name for t in scheduled_targets(rules, targets)] == ["on"]


@pytest.mark.parametrize(
    ("expression", "target_spec", "problem"),
    [
        ("cron(0 12 * * ? *)", target(), "cron"),
        ("rate(1 minutes)", target(), "singular"),
        ("rate(1 minute)", target(arn="arn:aws:sqs:us-east-1:123456789012:q"), "not a Lambda"),
        ("rate(1 minute)", target(InputPath="$.detail"), "InputPath"),
        ("rate(1 minute)", target(InputTransformer={"InputTemplate": "{}"}), "InputTransformer"),
    ],
)
def test_what_is_not_fired_says_why(expression, target_spec, problem):
    scheduler, invocations, clock = scheduler_with_fake_clock()
    scheduler.update([rule(expression=expression)], {RULE_ARN: [target_spec]})
    clock[0] = 10 * 86400

    assert scheduler.tick() is None
    assert invocations == []
    (status,) = scheduler.status().values()
    assert problem in status["not_fired"]
    assert status["next_in_s"] is None


def scheduler_with_fake_clock(result: Result | None = None):
    """A scheduler on a clock the test moves, invoking synchronously into a list."""
    clock = [1000.0]
    invocations: list[tuple[str, dict | list, str, list[str]]] = []

    def invoke(function: str, payload: bytes, source: str, items: list[str]) -> Result:
        invocations.append((function, json.loads(payload), source, items))
        return result or Result(request_id="r", payload=b"null")

    scheduler = Scheduler(
        invoke,
        clock=lambda: clock[0],
        wall=lambda: WHEN,
        dispatch=lambda function, *args: function(*args),
    )
    return scheduler, invocations, clock


def test_a_rate_rule_invokes_its_function_every_period_with_the_scheduled_event():
    scheduler, invocations, clock = scheduler_with_fake_clock()
    scheduler.update([rule()], {RULE_ARN: [target()]})

    # nothing when the rule is first seen, nor before one period has passed
    assert scheduler.tick() == 60
    clock[0] += 59.9
    assert scheduler.tick() == pytest.approx(0.1)
    assert invocations == []

    clock[0] += 0.1
    assert scheduler.tick() == 60
    assert scheduler.tick() == 60  # once per period
    function, event, source, items = invocations[0]
    assert len(invocations) == 1
    assert function == "media-pipeline-reconciler"
    assert (source, items) == (SOURCE, [RULE_ARN])
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-23T10:00:05Z",
        "region": "us-east-1",
        "resources": [RULE_ARN],
        "detail": {},
    }

    clock[0] += 60
    scheduler.tick()
    assert len(invocations) == 2
    assert invocations[1][1]["id"] != event["id"]
    status = scheduler.status()["reconcile/reconciler"]
    assert (status["fired"], status["next_in_s"], status["last_error"]) == (2, 60, None)


def test_periods_missed_are_not_caught_up():
    scheduler, invocations, clock = scheduler_with_fake_clock()
    scheduler.update([rule()], {RULE_ARN: [target()]})
    clock[0] += 10 * 60 + 30  # ten periods and a half went by (a suspended laptop)

    assert scheduler.tick() == 60
    assert len(invocations) == 1


def test_a_targets_input_is_sent_verbatim_instead_of_the_event():
    scheduler, invocations, clock = scheduler_with_fake_clock()
    scheduler.update([rule()], {RULE_ARN: [target(Input='{"mode": "full"}')]})
    clock[0] += 60
    scheduler.tick()
    assert invocations[0][1] == {"mode": "full"}


def test_every_target_of_a_rule_fires():
    scheduler, invocations, clock = scheduler_with_fake_clock()
    other = FUNCTION_ARN.replace("reconciler", "janitor")
    scheduler.update([rule()], {RULE_ARN: [target(), target("janitor", other)]})
    clock[0] += 60
    scheduler.tick()
    assert sorted(i[0] for i in invocations) == [
        "media-pipeline-janitor",
        "media-pipeline-reconciler",
    ]


@pytest.mark.parametrize("how", ["deleted", "disabled", "target removed"])
def test_a_removed_or_disabled_rule_stops_firing(how):
    scheduler, invocations, clock = scheduler_with_fake_clock()
    scheduler.update([rule()], {RULE_ARN: [target()]})
    clock[0] += 60
    scheduler.tick()
    assert len(invocations) == 1

    if how == "deleted":
        scheduler.update([], {})
    elif how == "disabled":
        scheduler.update([rule(state="DISABLED")], {RULE_ARN: [target()]})
    else:
        scheduler.update([rule()], {RULE_ARN: []})
    clock[0] += 3600
    assert scheduler.tick() is None
    assert len(invocations) == 1
    assert scheduler.status() == {}


def test_a_re_enabled_rule_starts_its_period_again():
    scheduler, invocations, clock = scheduler_with_fake_clock()
    scheduler.update([rule()], {RULE_ARN: [target()]})
    clock[0] += 30
    scheduler.update([rule(state="DISABLED")], {RULE_ARN: [target()]})
    clock[0] += 30
    scheduler.update([rule()], {RULE_ARN: [target()]})

    clock[0] += 59
    scheduler.tick()
    assert invocations == []
    clock[0] += 1
    scheduler.tick()
    assert len(invocations) == 1


def test_a_new_expression_restarts_the_period_and_a_new_input_does_not():
    scheduler, invocations, clock = scheduler_with_fake_clock()
    scheduler.update([rule(expression="rate(2 minutes)")], {RULE_ARN: [target()]})
    clock[0] += 100
    scheduler.update([rule(expression="rate(2 minutes)")], {RULE_ARN: [target(Input='{"v": 2}')]})
    clock[0] += 20
    scheduler.tick()
    assert [i[1] for i in invocations] == [{"v": 2}]  # on the old schedule, with the new input

    scheduler.update([rule(expression="rate(1 hour)")], {RULE_ARN: [target()]})
    clock[0] += 3599
    scheduler.tick()
    assert len(invocations) == 1
    clock[0] += 1
    scheduler.tick()
    assert len(invocations) == 2


def test_a_failed_invocation_is_reported_in_the_status():
    scheduler, _, clock = scheduler_with_fake_clock(
        Result.failure("", "NotFound", "ResourceNotFoundException", "Function not found: x")
    )
    scheduler.update([rule()], {RULE_ARN: [target()]})
    clock[0] += 60
    scheduler.tick()
    status = scheduler.status()["reconcile/reconciler"]
    assert status["fired"] == 1
    assert "Function not found" in status["last_error"]
    assert status["last_fired"] == WHEN.isoformat(timespec="seconds")


def test_the_scheduler_thread_fires_when_the_clock_says_so_and_stops_with_the_runtime():
    clock = [0.0]
    fired = threading.Event()
    sources: list[str] = []

    def invoke(function: str, payload: bytes, source: str, items: list[str]) -> Result:
        sources.append(source)
        fired.set()
        return Result(request_id="r", payload=b"null")

    scheduler = Scheduler(invoke, clock=lambda: clock[0])
    scheduler.start()
    try:
        scheduler.update([rule()], {RULE_ARN: [target()]})
        assert not fired.wait(0.3)  # not due: the thread waits
        clock[0] = 60.0
        scheduler.wake()
        assert fired.wait(5), "the due rule was not fired"
        assert sources == [SOURCE]
    finally:
        scheduler.stop()
    assert scheduler._thread is not None
    assert not scheduler._thread.is_alive()
