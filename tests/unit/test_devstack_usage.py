"""The embedded stack's usage recorder (devstack/usage.py) against moto, in process: what it
counts of DynamoDB writes and reads, S3 objects and EventBridge deliveries."""

from __future__ import annotations

import json

import boto3
import pytest
from devstack import moto_patches, usage
from devstack.faults import OperationCount
from moto import mock_aws
from moto.dynamodb.models.table import StreamShard
from moto.dynamodb.responses import DynamoHandler
from moto.events.models import Rule
from moto.s3.models import S3Backend
from tooling.billing import item_size

REGION = "us-east-1"


@pytest.fixture
def recorder(monkeypatch):
    """A recorder installed into moto for one test (moto's methods restored afterwards)."""
    for name in (*moto_patches._DYNAMODB_WRITES, *usage._READS):
        monkeypatch.setattr(DynamoHandler, name, getattr(DynamoHandler, name))
    monkeypatch.setattr(StreamShard, "add", StreamShard.add)
    monkeypatch.setattr(S3Backend, "put_object", S3Backend.put_object)
    monkeypatch.setattr(Rule, "send_to_targets", Rule.send_to_targets)
    monkeypatch.setattr(moto_patches, "_write_observer", None)
    monkeypatch.setattr(usage, "_installed", None)
    monkeypatch.setattr(moto_patches.request_context, "caller", "worker", raising=False)
    moto_patches._serialize_dynamodb_writes()
    moto_patches._sequence_s3_events()
    moto_patches._deliver_events_to_enabled_pattern_rules()
    found = usage.UsageRecorder()
    usage.install(found)
    return found


def capacity_rows(snapshot: dict, **match) -> list[dict]:
    return [
        row
        for row in snapshot["dynamodb"]["capacity"]
        if all(row.get(k) == v for k, v in match.items())
    ]


def test_dynamodb_writes_and_reads_are_measured_by_dynamodbs_rules(recorder):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="media",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "id", "AttributeType": "S"},
                {"AttributeName": "pending", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "pending",
                    "KeySchema": [{"AttributeName": "pending", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        big = "x" * 1500
        # GIVEN an item that enters the index (1 table WU, 1 index put)
        dynamodb.put_item(
            TableName="media", Item={"id": {"S": "a"}, "pending": {"S": "PROCESSING"}}
        )
        # WHEN it grows to 2 KB and leaves the index (2 WU; an index delete of 1)
        dynamodb.update_item(
            TableName="media",
            Key={"id": {"S": "a"}},
            UpdateExpression="SET big = :b REMOVE pending",
            ExpressionAttributeValues={":b": {"S": big}},
        )
        # AND a conditional write fails on it (the existing 2 KB item: 2 WU, no index write)
        with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.put_item(
                TableName="media",
                Item={"id": {"S": "a"}},
                ConditionExpression="attribute_not_exists(id)",
            )
        # AND it is read (consistent: 1 RU) and queried through the index (nothing there)
        dynamodb.get_item(TableName="media", Key={"id": {"S": "a"}}, ConsistentRead=True)
        dynamodb.query(
            TableName="media",
            IndexName="pending",
            KeyConditionExpression="pending = :p",
            ExpressionAttributeValues={":p": {"S": "PROCESSING"}},
        )
        # AND deleted (2 WU)
        dynamodb.delete_item(TableName="media", Key={"id": {"S": "a"}})
        snapshot = recorder.snapshot()

    def units(**match) -> float:
        return sum(r.get("units", 0) for r in capacity_rows(snapshot, **match))

    assert units(table="media", index="", kind="write", operation="PutItem") == 1 + 2
    assert units(table="media", index="", kind="write", operation="UpdateItem") == 2
    assert units(table="media", index="", kind="write", operation="DeleteItem") == 2
    (failed,) = [r for r in capacity_rows(snapshot, operation="PutItem") if r.get("failed")]
    assert failed["caller"] == "worker"
    writes = {(r["kind"], r["count"]) for r in snapshot["dynamodb"]["index_writes"]}
    assert writes == {("put", 1), ("delete", 1)}
    assert units(table="media", kind="read", operation="GetItem") == 1
    assert units(table="media", index="pending", kind="read", operation="Query") == 0.5
    # per key value: the table's and the index's, with the items that wrote to them
    keys = {(k["table"], k["index"], k["key"]): k for k in snapshot["dynamodb"]["keys"]}
    assert keys[("media", "", "a")]["wu"] == 1 + 2 + 2 + 2
    assert keys[("media", "", "a")]["ru"] == 1
    assert keys[("media", "pending", "PROCESSING")]["items"] == {"a": 2}
    assert keys[("media", "pending", "PROCESSING")]["ru"] == 0.5
    # nothing is stored any more
    storage = {
        (r["table"], r["index"], r["measure"]): r["value"] for r in snapshot["dynamodb"]["storage"]
    }
    assert storage[("media", "", "entries")] == 0
    assert storage[("media", "", "bytes")] == 0
    assert snapshot["dynamodb"]["tables"]["media"]["indexes"]["pending"]["projection"] == "ALL"


def test_a_batch_write_bills_each_item(recorder):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {"id": {"S": "1"}, "blob": {"S": "y" * 2000}}
        dynamodb.batch_write_item(
            RequestItems={
                "t": [{"PutRequest": {"Item": item}}, {"PutRequest": {"Item": {"id": {"S": "2"}}}}]
            }
        )
        snapshot = recorder.snapshot()
    (row,) = capacity_rows(snapshot, table="t", operation="BatchWriteItem")
    assert (row["requests"], row["items"], row["units"]) == (1, 2, 2 + 1)
    storage = {(r["table"], r["measure"]): r["value"] for r in snapshot["dynamodb"]["storage"]}
    assert storage[("t", "entries")] == 2
    assert storage[("t", "bytes")] == item_size(item) + item_size({"id": {"S": "2"}}) + 200


def test_s3_objects_stored_and_eventbridge_deliveries_are_counted(recorder):
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        s3.create_bucket(Bucket="uploads-bucket")
        queue = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        pattern = json.dumps({"source": ["app"]})
        events.put_rule(Name="on", EventPattern=pattern)
        events.put_rule(Name="off", EventPattern=pattern, State="DISABLED")
        for rule in ("on", "off"):
            events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": arn}])

        s3.put_object(Bucket="uploads-bucket", Key="uploads/a/1.jpg", Body=b"x" * 100)
        events.put_events(
            Entries=[
                {"Source": "app", "DetailType": "d", "Detail": "{}", "EventBusName": "default"}
            ]
        )
        snapshot = recorder.snapshot()
    stored = {(r["bucket"], r["measure"]): r["value"] for r in snapshot["s3"]["stored"]}
    assert stored == {("uploads-bucket", "objects"): 1, ("uploads-bucket", "bytes"): 100}
    assert [key for _, key in snapshot["s3"]["keys"]["uploads-bucket"]] == ["uploads/a/1.jpg"]
    assert snapshot["events"]["matched"] == [{"source": "app", "detail_type": "d", "count": 1}]
    assert snapshot["events"]["targets"] == {arn: 1}  # the disabled rule delivered nothing


def test_each_s3_event_a_rule_matches_is_counted_once_whatever_the_rules(recorder):
    # moto sends every S3 event with one placeholder id; patch 2 gives each its own on its way
    # to the first rule. Two rules receive each event: two target invocations, one event.
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        s3.create_bucket(Bucket="uploads-bucket")
        s3.put_bucket_notification_configuration(
            Bucket="uploads-bucket",
            NotificationConfiguration={"EventBridgeConfiguration": {}},
        )
        queue = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for rule in ("thumbnail", "metadata"):
            pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"]}
            events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
            events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": arn}])
        for n in range(3):
            s3.put_object(Bucket="uploads-bucket", Key=f"uploads/{n}.jpg", Body=b"x")
        snapshot = recorder.snapshot()
    assert snapshot["events"]["matched"] == [
        {"source": "aws.s3", "detail_type": "Object Created", "count": 3}
    ]
    assert snapshot["events"]["targets"] == {arn: 6}


def test_the_caller_is_the_app_id_of_the_user_agent_and_terraform_is_told_apart():
    def caller(agent: str) -> str:
        return usage.caller_of({"HTTP_USER_AGENT": agent})

    assert caller("Boto3/1.44 md/Botocore#1.44 app/media-pipeline-api Botocore/1.44") == (
        "media-pipeline-api"
    )
    assert caller("APN/1.0 HashiCorp/1.0 Terraform/1.9.8 terraform-provider-aws/5.100") == (
        "terraform"
    )
    assert caller("curl/8") == "other"


def test_requests_are_counted_by_caller_and_summed_as_before():
    counts = OperationCount()
    environ = {"REQUEST_METHOD": "POST"}
    counts.record(environ, "sqs", operation="ReceiveMessage", caller="lambda-service")
    counts.record(environ, "sqs", operation="ReceiveMessage", caller="capacity-app")
    assert counts.counts() == {"sqs ReceiveMessage": 2}
    assert {r["caller"] for r in counts.by_caller()} == {"lambda-service", "capacity-app"}
