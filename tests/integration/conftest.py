"""The integration tier: each handler, imported as Lambda would import it, against moto's
in-process ``mock_aws`` with tables, buckets and topics shaped like the Terraform's (the tables
made from the module's own ``aws_dynamodb_table`` blocks)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from media_pipeline.dynamo import from_item
from media_pipeline.model import Half
from moto import mock_aws
from tooling import terraform_config

REGION = "us-east-1"
UPLOADS = "uploads-bucket"
RENDITIONS = "renditions-bucket"
MEDIA_TABLE = "media"
IDEMPOTENCY_TABLE = "idempotency"
DUPLICATES_TABLE = "duplicates"
ORIGIN = "http://127.0.0.1:4613"  # the upload API's CORS origin in the api fixture
MAX_BYTES = 1_000_000  # and its MAX_UPLOAD_BYTES
TABLES = terraform_config.load(terraform_config.MODULES_DIR / "pipeline").resources[
    "aws_dynamodb_table"
]


@dataclass
class Aws:
    s3: Any
    dynamodb: Any
    sqs: Any
    topic_arn: str
    subscriber_url: str

    def put_upload(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        return self.s3.put_object(Bucket=UPLOADS, Key=key, Body=data, ContentType=content_type)[
            "ETag"
        ].strip('"')

    def media_item(self, image_id: str) -> dict[str, Any] | None:
        """The media table's item for an image, as the handlers read it; None if there is none."""
        response = self.dynamodb.get_item(TableName=MEDIA_TABLE, Key={"id": {"S": image_id}})
        return from_item(response["Item"]) if "Item" in response else None

    def notifications(self) -> list[dict[str, Any]]:
        messages = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.subscriber_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(message)
                self.sqs.delete_message(
                    QueueUrl=self.subscriber_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "media-pipeline-test",
        "POWERTOOLS_SERVICE_NAME": "test",
        "MEDIA_TABLE": MEDIA_TABLE,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "DUPLICATES_TABLE": DUPLICATES_TABLE,
        "RENDITIONS_BUCKET": RENDITIONS,
        "UPLOADS_BUCKET": UPLOADS,
        "MAX_RECEIVE_COUNT": "3",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (UPLOADS, RENDITIONS):
            s3.create_bucket(Bucket=bucket)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for name, table in (
            (MEDIA_TABLE, "media"),
            (IDEMPOTENCY_TABLE, "idempotency"),
            (DUPLICATES_TABLE, "duplicates"),
        ):
            dynamodb.create_table(**terraform_config.create_table_arguments(TABLES[table], name))
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name="media-events")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        for half in Half:  # the job queues and their DLQs, for the reconciler
            for suffix, variable in (("jobs", "QUEUE_URL"), ("dlq", "DLQ_URL")):
                url = sqs.create_queue(QueueName=f"{half.stage}-{suffix}")["QueueUrl"]
                monkeypatch.setenv(f"{half.stage.upper()}_{variable}", url)
        queue_url = sqs.create_queue(QueueName="app-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        monkeypatch.setenv("EVENTS_TOPIC_ARN", topic_arn)
        yield Aws(s3=s3, dynamodb=dynamodb, sqs=sqs, topic_arn=topic_arn, subscriber_url=queue_url)


@pytest.fixture
def load_handler(aws: Aws) -> Callable[[str], Any]:
    """Import a handler module afresh (its settings and clients are made at import, as on a cold
    start), inside the mock."""

    def load(name: str) -> Any:
        module = f"media_pipeline.handlers.{name}"
        sys.modules.pop(module, None)
        return importlib.import_module(module)

    return load


@pytest.fixture
def api(aws: Aws, load_handler: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The upload API handler, configured as a deployment configures it."""
    monkeypatch.setenv("UPLOADS_BUCKET", UPLOADS)
    monkeypatch.setenv("UPLOAD_PREFIX", "uploads/")
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(MAX_BYTES))
    monkeypatch.setenv("UPLOAD_EXPIRY_SECONDS", "600")
    monkeypatch.setenv("CORS_ORIGINS", f"{ORIGIN},https://app.example.com")
    return load_handler("api")


def count_calls(client: Any, operation: str) -> list[dict[str, Any]]:
    """Every call of ``operation`` made through ``client`` from now on (its parameters)."""
    calls: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(
        f"provide-client-params.{service}.{operation}",
        lambda params, **_: calls.append(dict(params)),
    )
    return calls
