"""Using a deployed pipeline the way an app does: upload, then hear back on the app events queue.

Shared by ``make demo`` and the end-to-end tests. Works against any deployment whose
``terraform output -json`` it is given (the local stack, LocalStack, AWS).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from media_pipeline.dynamo import from_item
from media_pipeline.model import media_id
from tooling.api_client import content_type_of


@dataclass(frozen=True)
class Uploaded:
    id: str
    key: str
    etag: str
    uploaded_at: float


@dataclass
class Notification:
    body: dict[str, Any]
    attributes: dict[str, str]
    received_at: float


@dataclass
class Pipeline:
    outputs: dict[str, Any]
    session: boto3.session.Session
    endpoint_url: str | None = None
    verify: str | None = None  # a CA bundle path (the local stack), None for the default trust
    notifications: dict[str, list[Notification]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        config = Config(
            retries={"mode": "standard"},
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        kwargs = {"endpoint_url": self.endpoint_url, "config": config, "verify": self.verify}
        self.s3 = self.session.client("s3", **kwargs)
        self.sqs = self.session.client("sqs", **kwargs)
        self.dynamodb = self.session.client("dynamodb", **kwargs)

    @classmethod
    def for_local_stack(cls, outputs: dict[str, Any], endpoint: str, ca_bundle: Path) -> Pipeline:
        session = boto3.session.Session(
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - the emulator's fixed credentials
            region_name=outputs["region"],
        )
        return cls(outputs=outputs, session=session, endpoint_url=endpoint, verify=str(ca_bundle))

    @classmethod
    def for_localstack(cls, outputs: dict[str, Any], session: Any, endpoint: str) -> Pipeline:
        """Clients from a localstack-client session (it fixes their endpoint and credentials)."""
        return cls(outputs=outputs, session=session, endpoint_url=endpoint)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, verify=self.verify)

    # -- uploads ----------------------------------------------------------------------------

    def new_key(self, filename: str) -> str:
        return f"{self.outputs['upload_prefix']}{uuid.uuid4().hex}/{filename}"

    def upload(
        self, data: bytes, filename: str, *, key: str | None = None, content_type: str | None = None
    ) -> Uploaded:
        key = key or self.new_key(filename)
        started = time.monotonic()
        response = self.s3.put_object(
            Bucket=self.outputs["uploads_bucket"],
            Key=key,
            Body=data,
            ContentType=content_type or content_type_of(filename),
        )
        return Uploaded(
            id=media_id(self.outputs["uploads_bucket"], key),
            key=key,
            etag=response["ETag"].strip('"'),
            uploaded_at=started,
        )

    # -- results ----------------------------------------------------------------------------

    def item(self, image_id: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(
            TableName=self.outputs["media_table"], Key={"id": {"S": image_id}}, ConsistentRead=True
        )
        return from_item(response["Item"]) if "Item" in response else None

    def poll_notifications(self, wait_seconds: int = 1) -> int:
        """Move what is on the app events queue into ``notifications`` (by image id)."""
        response = self.sqs.receive_message(
            QueueUrl=self.outputs["app_events_queue_url"],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        now = time.monotonic()
        for message in messages:
            body = json.loads(message["Body"])
            attributes = {
                k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()
            }
            self.notifications[body["image"]["id"]].append(Notification(body, attributes, now))
        if messages:
            self.sqs.delete_message_batch(
                QueueUrl=self.outputs["app_events_queue_url"],
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return len(messages)

    def wait_for(
        self, image_ids: set[str] | list[str], timeout: float = 90
    ) -> dict[str, Notification]:
        """The first notification of each image, waiting up to ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        pending = set(image_ids)
        while True:
            pending = {i for i in pending if not self.notifications.get(i)}
            if not pending:
                return {i: self.notifications[i][0] for i in image_ids}
            if time.monotonic() > deadline:
                raise TimeoutError(f"no notification within {timeout:.0f} s for {sorted(pending)}")
            self.poll_notifications()

    def wait_for_count(self, image_id: str, count: int, timeout: float = 90) -> list[Notification]:
        """Until ``count`` notifications of the image have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.notifications.get(image_id, [])) < count:
            if time.monotonic() > deadline:
                got = len(self.notifications.get(image_id, []))
                raise TimeoutError(
                    f"{got} of {count} notifications of {image_id} within {timeout:.0f} s"
                )
            self.poll_notifications()
        return self.notifications[image_id]

    def in_queue(self, queue_url: str) -> int:
        """Messages in a queue, visible or in flight or delayed (SQS's approximate counts)."""
        names = [
            "ApproximateNumberOf" + n for n in ("Messages", "MessagesNotVisible", "MessagesDelayed")
        ]
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
        return sum(int(attributes["Attributes"].get(name, 0)) for name in names)

    def visibility_timeout(self, queue_url: str) -> int:
        """Seconds before a received, undeleted message can be delivered again."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
        )
        return int(attributes["Attributes"]["VisibilityTimeout"])

    def drain(self, seconds: float) -> None:
        """Keep collecting notifications for a while (to check that no second one comes)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll_notifications(wait_seconds=1)

    def download(self, rendition: dict[str, Any]) -> bytes:
        return self.s3.get_object(Bucket=rendition["bucket"], Key=rendition["key"])["Body"].read()
