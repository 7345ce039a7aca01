"""Least privilege, enforced: what a function must never be able to do is tried with its own
role's credentials on the embedded stack, and denied (devstack/iam.py).

Each test takes a session of a function's role (``POST /_devstack/iam/credentials``: the same
role and policies, session name ``iam-probe``), makes the call, expects AWS's AccessDenied, and
finds the denial in the stack's record, named by function, action and resource. Every e2e
test also fails when a call of the pipeline itself is denied (conftest.no_call_denied), and the
session compares what was used with what is granted (devstack/iam_report.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from devstack import iam, iam_report
from devstack.stack import Stack
from tooling.api_client import UploadClient

pytestmark = pytest.mark.embedded_only("IAM is enforced on the embedded stack only")

OTHER = "other-pipeline"  # another deployment in the same account


@pytest.fixture(scope="module")
def enforced(local_stack: Stack) -> Stack:
    if not local_stack.control("iam?calls=0")["enforced"]:
        pytest.skip("the stack runs with DEVSTACK_IAM=off")
    return local_stack


@pytest.fixture(scope="module")
def as_function(enforced: Stack, outputs) -> Callable[[str, str], Any]:
    """``as_function("api", "s3")``: a client with a session of that function's role."""
    sessions: dict[str, boto3.session.Session] = {}

    def client(function: str, service: str) -> Any:
        name = outputs["functions"][function]
        if name not in sessions:
            credentials = enforced.control(
                "iam/credentials", method="POST", body={"function": name}
            )
            sessions[name] = boto3.session.Session(
                aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=credentials["AWS_SESSION_TOKEN"],
                region_name="us-east-1",
            )
        return sessions[name].client(
            service,
            endpoint_url=enforced.endpoint,
            verify=str(enforced.ca_bundle),
            config=Config(
                retries={"mode": "standard", "max_attempts": 1},
                s3={"addressing_style": "path"},
                signature_version="s3v4" if service == "s3" else None,
                user_agent_appid=iam.PROBE,
            ),
        )

    return client


def denied(
    enforced: Stack, call: Callable[[], Any], function: str, action: str, resource: str
) -> None:
    """The call fails with AWS's AccessDenied, and the stack recorded that very denial."""
    since = enforced.control("iam?calls=0")["sequence"]
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    assert error["Code"] in ("AccessDenied", "AccessDeniedException", "403"), error
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    denials = enforced.control(f"iam?calls=0&denials_since={since}")["denials"]
    assert any(
        d["role"] == f"{function}-role" and d["action"] == action and d["resource"] == resource
        for d in denials
    ), denials


def allowed(call: Callable[[], Any]) -> Any:
    return call()


def test_the_api_function_cannot_write_renditions(enforced, as_function, outputs):
    s3 = as_function("api", "s3")
    bucket, key = outputs["renditions_bucket"], f"{uuid.uuid4().hex}/x/large.jpg"
    denied(
        enforced,
        lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"not a rendition"),
        outputs["functions"]["api"],
        "s3:PutObject",
        f"arn:aws:s3:::{bucket}/{key}",
    )


def test_a_worker_cannot_delete_originals(enforced, as_function, outputs):
    bucket, key = outputs["uploads_bucket"], f"{outputs['upload_prefix']}{uuid.uuid4().hex}.jpg"
    for worker in ("metadata", "thumbnail"):
        s3 = as_function(worker, "s3")
        denied(
            enforced,
            lambda s3=s3: s3.delete_object(Bucket=bucket, Key=key),
            outputs["functions"][worker],
            "s3:DeleteObject",
            f"arn:aws:s3:::{bucket}/{key}",
        )


def test_the_notifier_cannot_read_the_uploads_bucket(enforced, as_function, outputs):
    s3 = as_function("notifier", "s3")
    bucket = outputs["uploads_bucket"]
    key = f"{outputs['upload_prefix']}{uuid.uuid4().hex}.jpg"
    denied(
        enforced,
        lambda: s3.get_object(Bucket=bucket, Key=key),
        outputs["functions"]["notifier"],
        "s3:GetObject",
        f"arn:aws:s3:::{bucket}/{key}",
    )
    denied(
        enforced,
        lambda: s3.list_objects_v2(Bucket=bucket),
        outputs["functions"]["notifier"],
        "s3:ListBucket",
        f"arn:aws:s3:::{bucket}",
    )


def test_the_api_cannot_query_the_reconcilers_index_nor_the_reconciler_the_apps(
    enforced, as_function, outputs
):
    table = outputs["media_table"]
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
    for function, index in (("api", "waiting"), ("reconciler", "listing")):
        dynamodb = as_function(function, "dynamodb")
        key = "waiting_shard" if index == "waiting" else "listing_key"
        denied(
            enforced,
            lambda d=dynamodb, i=index, k=key: d.query(
                TableName=table,
                IndexName=i,
                KeyConditionExpression="#k = :v",
                ExpressionAttributeNames={"#k": k},
                ExpressionAttributeValues={":v": {"S": "0"}},
            ),
            outputs["functions"][function],
            "dynamodb:Query",
            f"{arn}/index/{index}",
        )


@pytest.fixture(scope="module")
def other_deployment(enforced: Stack) -> Iterator[dict[str, str]]:
    """Resources of another deployment in the same account, made by the administrator."""
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )

    def admin(service: str) -> Any:
        return session.client(
            service,
            endpoint_url=enforced.endpoint,
            verify=str(enforced.ca_bundle),
            config=Config(s3={"addressing_style": "path"}),
        )

    dynamodb, s3, sqs, sns = admin("dynamodb"), admin("s3"), admin("sqs"), admin("sns")
    table = f"{OTHER}-media"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    buckets = {kind: f"{OTHER}-{kind}-123456789012-us-east-1" for kind in ("uploads", "renditions")}
    for bucket in buckets.values():
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=buckets["uploads"], Key="uploads/theirs.jpg", Body=b"theirs")
    queue = sqs.create_queue(QueueName=f"{OTHER}-thumbnail-jobs")["QueueUrl"]
    topic = sns.create_topic(Name=f"{OTHER}-media-events")["TopicArn"]
    yield {"table": table, **buckets, "queue": queue, "topic": topic}
    dynamodb.delete_table(TableName=table)
    for bucket in buckets.values():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
    sqs.delete_queue(QueueUrl=queue)
    sns.delete_topic(TopicArn=topic)


def test_no_function_touches_another_deployments_resources(
    enforced, as_function, outputs, other_deployment
):
    other = other_deployment
    table_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{other['table']}"
    functions = outputs["functions"]
    item = {"id": {"S": "x"}}
    attempts = [
        (
            "api",
            "dynamodb",
            lambda c: c.put_item(TableName=other["table"], Item=item),
            "dynamodb:PutItem",
            table_arn,
        ),
        (
            "thumbnail",
            "dynamodb",
            lambda c: c.get_item(TableName=other["table"], Key=item),
            "dynamodb:GetItem",
            table_arn,
        ),
        (
            "thumbnail",
            "s3",
            lambda c: c.put_object(Bucket=other["renditions"], Key="a/b.jpg", Body=b""),
            "s3:PutObject",
            f"arn:aws:s3:::{other['renditions']}/a/b.jpg",
        ),
        (
            "metadata",
            "s3",
            lambda c: c.get_object(Bucket=other["uploads"], Key="uploads/theirs.jpg"),
            "s3:GetObject",
            f"arn:aws:s3:::{other['uploads']}/uploads/theirs.jpg",
        ),
        (
            "reconciler",
            "sqs",
            lambda c: c.send_message(QueueUrl=other["queue"], MessageBody="{}"),
            "sqs:SendMessage",
            f"arn:aws:sqs:us-east-1:123456789012:{OTHER}-thumbnail-jobs",
        ),
        (
            "notifier",
            "sns",
            lambda c: c.publish(TopicArn=other["topic"], Message="{}"),
            "sns:Publish",
            other["topic"],
        ),
        (
            "api",
            "s3",
            lambda c: c.delete_object(Bucket=other["uploads"], Key="uploads/theirs.jpg"),
            "s3:DeleteObject",
            f"arn:aws:s3:::{other['uploads']}/uploads/theirs.jpg",
        ),
    ]
    for function, service, call, action, resource in attempts:
        client = as_function(function, service)
        denied(enforced, lambda c=client, f=call: f(c), functions[function], action, resource)
    # ... while the same role reaches its own deployment's resources
    own = as_function("thumbnail", "dynamodb")
    assert "Item" not in allowed(lambda: own.get_item(TableName=outputs["media_table"], Key=item))


def test_a_presigned_post_carries_only_its_signers_rights(
    enforced, as_function, outputs, ca_bundle
):
    """A presigned POST signed by the API role for a key outside the upload prefix is refused:
    S3 authorises the upload as the role that signed it (and checks the signature)."""
    s3 = as_function("api", "s3")
    bucket = outputs["uploads_bucket"]
    client = UploadClient(outputs["api_url"], outputs["api_key"], ca_bundle)
    key = f"elsewhere/{uuid.uuid4().hex}.jpg"
    outside = s3.generate_presigned_post(bucket, key)
    since = enforced.control("iam?calls=0")["sequence"]
    status, text = client.post_file(outside, b"bytes", "a.jpg")
    assert status == 403, text
    assert "AccessDenied" in text
    denials = enforced.control(f"iam?calls=0&denials_since={since}")["denials"]
    assert [(d["action"], d["resource"]) for d in denials] == [
        ("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}")
    ]
    # a policy for the prefix, its signature tampered with: refused before anything is stored
    inside = s3.generate_presigned_post(bucket, f"{outputs['upload_prefix']}{uuid.uuid4().hex}.jpg")
    tampered = {**inside, "fields": {**inside["fields"], "x-amz-signature": "0" * 64}}
    status, text = client.post_file(tampered, b"bytes", "a.jpg")
    assert status == 403, text
    assert "signature does not match" in text


def _documented_permissions() -> set[tuple[str, str, str]]:
    """(function, statement, action) of docs/deploy.md's table of each role's permissions."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    section = text.split("<!-- permissions:begin -->")[1].split("<!-- permissions:end -->")[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("function", "---") or not line.startswith("|"):
            continue
        function, sid, actions = cells[0], cells[1].strip("`"), cells[2]
        for action in re.findall(r"`([a-z0-9-]+:[A-Za-z*]+)`", actions):
            rows.add((function, sid, action))
    return rows


def test_the_documented_permissions_are_the_deployed_ones(enforced, outputs):
    """docs/deploy.md lists every statement of every role (those that exist only with a
    customer-managed key, or only without the CDN, are not deployed here)."""
    roles = enforced.control("iam")["roles"]
    deployed = {
        (g.function, g.sid, g.action)
        for g in iam_report.grants_of(
            roles, prefix=outputs["functions"]["api"].removesuffix("-api")
        )
    }
    documented = _documented_permissions()
    # only with kms_key_arn, or only without the CDN (the local stack has a CDN, no key)
    conditional = {
        r for r in documented if r[2].startswith("kms:") or r[1] == "SignRenditionDownloads"
    }
    assert deployed - documented == set(), "deployed, not in docs/deploy.md"
    assert documented - conditional - deployed == set(), "in docs/deploy.md, not deployed"
