"""Operator commands for what the event flow gave up on (docs/operations.md, "Recovering").

    python scripts/recover.py reconcile [--stuck-after S] [--orphans] [--dry-run]
    python scripts/recover.py redrive [--queue thumbnail_dlq|metadata_dlq ...]

``reconcile`` invokes the deployed reconciler function (the one its schedule runs) with these
options and prints its report: jobs in the DLQs end their items FAILED (or READY), items stuck
past the bound are re-enqueued, and with ``--orphans`` objects with no item are enqueued.

``redrive`` moves the workers' DLQ messages back to their jobs queues: with SQS's message move
task where the backend has one (AWS, LocalStack), else by receive / send / delete (moto). A
redriven job reopens its FAILED ``processing_error`` item and completes it.

Both read the stack's outputs (``terraform output -json``; default: the embedded stack's) and
talk to AWS_ENDPOINT_URL when set, else to the embedded stack when one is running, else to AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from tooling import terraform

JOB_QUEUES = {"thumbnail_dlq": "thumbnail_jobs", "metadata_dlq": "metadata_jobs"}
_NO_MOVE_TASKS = {"InvalidAction", "UnsupportedOperation", "NotImplemented", "InternalFailure"}


def move_messages(sqs: Any, source_url: str, destination_url: str, limit: int = 100_000) -> int:
    """Move messages from ``source_url`` to ``destination_url`` (receive, send, delete), for a
    backend without message move tasks. A message is deleted only after it was sent."""
    moved = 0
    while moved < limit:
        messages = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            sqs.send_message(
                QueueUrl=destination_url,
                MessageBody=message["Body"],
                MessageAttributes=message.get("MessageAttributes") or {},
            )
            sqs.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def redrive(sqs: Any, dlq_url: str, jobs_url: str) -> str:
    """Start a message move task from the DLQ back to its source queue, or move by hand."""
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    try:
        handle = sqs.start_message_move_task(SourceArn=arn)["TaskHandle"]
    except (ClientError, NotImplementedError) as error:
        code = error.response["Error"]["Code"] if isinstance(error, ClientError) else ""
        if isinstance(error, ClientError) and code not in _NO_MOVE_TASKS:
            raise
        return f"moved {move_messages(sqs, dlq_url, jobs_url)} message(s) by receive/send/delete"
    return f"move task {handle} started (aws sqs list-message-move-tasks --source-arn {arn})"


def stack_session(outputs_file: Path | None) -> tuple[dict[str, Any], Any]:
    if outputs_file is not None:
        outputs = terraform.output_values(outputs_file.read_text())
        return outputs, boto3.session.Session(region_name=outputs.get("region"))
    # Only this default needs the local stack's package: a deployment's outputs do not.
    from devstack import stack  # noqa: PLC0415

    running = stack.running()
    if running is None or os.environ.get("AWS_ENDPOINT_URL"):
        raise SystemExit("recover.py: give --outputs (terraform output -json), or `make up` first")
    outputs = running.outputs()
    os.environ["AWS_ENDPOINT_URL"] = running.endpoint
    os.environ["AWS_CA_BUNDLE"] = str(running.ca_bundle)
    session = boto3.session.Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the emulator's fixed credentials
        region_name=outputs["region"],
    )
    return outputs, session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outputs", type=Path, help="terraform output -json of the stack")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("reconcile", help="run the reconciler now and print its report")
    rec.add_argument("--stuck-after", type=int, help="seconds (default: the deployed bound)")
    rec.add_argument("--orphans", action="store_true", help="also list the bucket for orphans")
    rec.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    red = sub.add_parser("redrive", help="move DLQ messages back to their jobs queues")
    red.add_argument("--queue", action="append", choices=sorted(JOB_QUEUES))
    args = parser.parse_args(argv)

    outputs, session = stack_session(args.outputs)
    if args.command == "reconcile":
        options: dict[str, Any] = {"dry_run": args.dry_run}
        options["sweeps"] = ["dead_letters", "stuck", *(["orphans"] if args.orphans else [])]
        if args.stuck_after is not None:
            options["stuck_after_seconds"] = args.stuck_after
        response = session.client("lambda").invoke(
            FunctionName=outputs["functions"]["reconciler"], Payload=json.dumps(options).encode()
        )
        payload = json.loads(response["Payload"].read() or b"null")
        print(json.dumps(payload, indent=2))
        return 1 if response.get("FunctionError") else 0

    sqs = session.client("sqs")
    for dlq in args.queue or sorted(JOB_QUEUES):
        started = time.monotonic()
        result = redrive(sqs, outputs["queues"][dlq], outputs["queues"][JOB_QUEUES[dlq]])
        print(f"{dlq}: {result} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
