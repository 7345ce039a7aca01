"""The embedded stack's own controls, proven on the running stack: slow and body-matched faults,
killing a function's busy environments, EventBridge schedules that invoke a function, and
connections kept open across AWS calls."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from media_pipeline.model import media_id

from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.embedded_only("tests its own controls (faults, kill, schedules)")

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_a_delay_fault_holds_a_request_and_then_lets_it_through(pipeline, faults, local_stack):
    # GIVEN GetItem of one id held for 2 s, then passed on to the emulator
    image_id = f"devstack-delay-{uuid.uuid4().hex}"
    fault = faults(
        service="dynamodb", operation="GetItem", body=image_id, action="delay", delay=2.0
    )

    # WHEN the test's own client reads that item
    started = time.monotonic()
    item = pipeline.item(image_id)
    held = time.monotonic() - started

    # THEN the answer comes, the emulator's (no such item), after the delay
    assert item is None
    assert held >= 2.0
    (listed,) = [f for f in local_stack.control("faults")["faults"] if f["id"] == fault]
    assert (listed["hits"], listed["action"], listed["delay"]) == (1, "delay", 2.0)
    # AND a GetItem of another id is not held
    started = time.monotonic()
    assert pipeline.item(f"devstack-other-{uuid.uuid4().hex}") is None
    assert time.monotonic() - started < 2.0


def test_a_body_fault_fails_only_the_request_that_carries_the_text(pipeline, faults):
    image_id = f"devstack-body-{uuid.uuid4().hex}"
    faults(
        service="dynamodb",
        operation="GetItem",
        body=image_id,
        status=400,
        code="ValidationException",  # not retried by the client
        message="refused by a body fault",
    )
    with pytest.raises(ClientError) as refused:
        pipeline.item(image_id)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert pipeline.item(f"devstack-other-{uuid.uuid4().hex}") is None


def test_calls_share_one_kept_alive_connection(local_stack):
    # Every AWS call of the workers, pollers and tests goes through this server: a new TCP
    # connection and TLS handshake per call made each one about 4x slower (issue 9 note).
    context = ssl.create_default_context(cafile=str(local_stack.ca_bundle))
    connection = http.client.HTTPSConnection("127.0.0.1", local_stack.port, context=context)
    sockets = []
    try:
        for _ in range(3):
            connection.request("GET", "/_devstack/health")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            sockets.append(connection.sock)  # http.client drops a socket the server closed
    finally:
        connection.close()
    assert sockets[0] is not None
    assert all(sock is sockets[0] for sock in sockets)


def test_a_fault_that_does_not_validate_is_refused_with_400(local_stack):
    for spec in ({"service": "s3", "body": "("}, {"service": "s3", "delay": -1}):
        with pytest.raises(OSError, match="400"):
            local_stack.control("faults", method="POST", body=spec)


@pytest.mark.slow
def test_a_killed_environment_crashes_its_invocation_and_the_job_is_retried(
    pipeline, outputs, local_stack, faults, kill, journal
):
    thumbnail = outputs["functions"]["thumbnail"]
    key = pipeline.new_key("killed.jpg")
    image_id = media_id(outputs["uploads_bucket"], key)
    # GIVEN every read of one upload held for 20 s (the workers' timeout is 5 s here), so that the
    # thumbnail function is busy with it long enough to be killed
    held = faults(
        service="s3",
        method="GET",
        path=f"^/{re.escape(outputs['uploads_bucket'])}/{re.escape(key)}$",
        action="delay",
        delay=20,
    )
    seen = len(journal())
    pipeline.upload((SAMPLES / "cmyk.jpg").read_bytes(), "killed.jpg", key=key)

    # WHEN the thumbnail function's busy environment is killed while its read is held (both
    # workers read the upload: two hits, and both are waiting for their object)
    def kill_while_held() -> int:
        faults_now = local_stack.control("faults")["faults"]
        hits = next(f["hits"] for f in faults_now if f["id"] == held)
        busy = local_stack.control("status")["functions"][thumbnail]["busy"]
        return kill(thumbnail) if hits >= 2 and busy else 0

    killed = wait_until(
        kill_while_held, 90, "the thumbnail function was never busy with the held read", 0.1
    )
    assert killed >= 1
    local_stack.control(f"faults/{held}", method="DELETE")  # the retry reads at full speed

    # THEN that invocation ended as Lambda reports a crashed runtime
    def crashed() -> dict | None:
        return next(
            (
                e
                for e in journal()[seen:]
                if e["function"] == thumbnail and e["error_type"] == "Runtime.ExitError"
            ),
            None,
        )

    crash = wait_until(crashed, 30, "no invocation of the thumbnail function crashed")
    assert crash["error"] == "Unhandled"
    assert crash["source"] == "aws:sqs"
    assert "Runtime exited with error: signal: killed" in crash["error_message"]

    # AND its message came back after the visibility timeout, ran in a new environment and
    # succeeded: the upload ends READY
    notification = pipeline.wait_for([image_id], timeout=120)[image_id]
    assert notification.body["type"] == "image.ready"
    retried = [
        e
        for e in journal()[seen:]
        if e["function"] == thumbnail and set(crash["items"]) & set(e["items"])
    ]
    assert [e["error_type"] for e in retried][-1] is None
    assert len(retried) >= 2


@pytest.mark.slow
def test_a_scheduled_rule_invokes_its_function_at_its_rate(pipeline, outputs, local_stack, journal):
    events = pipeline.client("events")
    notifier = outputs["functions"]["notifier"]
    function_arn = pipeline.client("lambda").get_function(FunctionName=notifier)["Configuration"][
        "FunctionArn"
    ]
    name = f"devstack-schedule-{uuid.uuid4().hex[:8]}"
    # GIVEN a rule that runs the notifier every minute, with an input of its own
    rule_arn = events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")["RuleArn"]
    events.put_targets(
        Rule=name,
        Targets=[{"Id": "notifier", "Arn": function_arn, "Input": json.dumps({"Records": []})}],
    )
    try:
        status = local_stack.control("refresh", method="POST")["schedules"][f"{name}/notifier"]
        assert (status["function"], status["not_fired"]) == (notifier, None)
        # a schedule-only rule receives no events (moto would hand it every one, and fail on
        # its Lambda target)
        assert (
            events.put_events(
                Entries=[{"Source": "devstack.test", "DetailType": "check", "Detail": "{}"}]
            )["FailedEntryCount"]
            == 0
        )

        # THEN about a minute later the notifier is invoked by EventBridge
        entry = wait_until(
            lambda: next(
                (e for e in journal() if e["source"] == "events" and rule_arn in e["items"]),
                None,
            ),
            90,
            "the scheduled rule never invoked its function",
            interval=1,
        )
        assert entry["function"] == notifier
    finally:
        events.remove_targets(Rule=name, Ids=["notifier"])
        events.delete_rule(Name=name)
    # AND once deleted, the rule is no longer scheduled
    assert f"{name}/notifier" not in local_stack.control("refresh", method="POST")["schedules"]
