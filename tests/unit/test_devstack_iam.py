"""IAM on the embedded stack, the parts without a server: policy evaluation (iam_policy.py), the
IAM actions of S3 requests and presigned signatures (iam.py), used versus granted
(iam_report.py)."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from devstack import iam, iam_lint, iam_policy, iam_report

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/media"


def policy(*statements: dict) -> list[tuple[str, str]]:
    return [("p", json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))]


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_actions_match_without_case_and_resources_with_it():
    granted = policy(allow("dynamodb:getitem", TABLE))
    assert iam_policy.evaluate(granted, "dynamodb:GetItem", TABLE, {}).allowed
    assert not iam_policy.evaluate(granted, "dynamodb:GetItem", TABLE.upper(), {}).allowed
    assert not iam_policy.evaluate(granted, "dynamodb:PutItem", TABLE, {}).allowed


def test_wildcards_are_iams_not_regular_expressions():
    granted = policy(allow("s3:Get*", "arn:aws:s3:::bucket/uploads/?.jpg"))
    assert iam_policy.evaluate(
        granted, "s3:GetObject", "arn:aws:s3:::bucket/uploads/a.jpg", {}
    ).allowed
    assert not iam_policy.evaluate(
        granted, "s3:GetObject", "arn:aws:s3:::bucket/uploads/ab.jpg", {}
    ).allowed
    dotted = policy(allow("s3:GetObject", "arn:aws:s3:::a.b/*"))
    assert not iam_policy.evaluate(dotted, "s3:GetObject", "arn:aws:s3:::axb/k", {}).allowed


def test_an_explicit_deny_wins_and_an_index_is_not_its_table():
    granted = policy(
        allow("dynamodb:*", f"{TABLE}*"),
        {"Effect": "Deny", "Action": "dynamodb:Query", "Resource": f"{TABLE}/index/listing"},
    )
    assert iam_policy.evaluate(granted, "dynamodb:Query", f"{TABLE}/index/waiting", {}).allowed
    denied = iam_policy.evaluate(granted, "dynamodb:Query", f"{TABLE}/index/listing", {})
    assert not denied.allowed
    assert denied.reason == "explicit deny"
    only_table = policy(allow("dynamodb:Query", TABLE))
    assert not iam_policy.evaluate(only_table, "dynamodb:Query", f"{TABLE}/index/x", {}).allowed


def test_not_resource_and_not_action_exclude():
    granted = policy(
        {"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::secret/*"}
    )
    assert iam_policy.evaluate(granted, "s3:GetObject", "arn:aws:s3:::open/k", {}).allowed
    assert not iam_policy.evaluate(granted, "s3:GetObject", "arn:aws:s3:::secret/k", {}).allowed
    assert not iam_policy.evaluate(granted, "s3:DeleteObject", "arn:aws:s3:::open/k", {}).allowed


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, False),
        (
            {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/app-*"}},
            {"aws:PrincipalArn": "arn:aws:iam::1:role/app-api"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/x"}},
            {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/x"},
            True,
        ),
        ({"StringEquals": {"s3:prefix": "a/"}}, {}, False),  # a key the request lacks
        ({"StringNotEquals": {"s3:prefix": "a/"}}, {}, True),
        ({"StringEqualsIfExists": {"s3:prefix": "a/"}}, {}, True),
        ({"Null": {"s3:prefix": "true"}}, {}, True),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, True),
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": ["a"]}, True),
        ({"ForAnyValue:StringEquals": {"k": ["c"]}}, {"k": ["a", "b"]}, False),
    ],
)
def test_conditions_are_evaluated_against_the_context(condition, context, holds):
    granted = policy(allow("s3:GetObject", "*", Condition=condition))
    assert (
        iam_policy.evaluate(granted, "s3:GetObject", "arn:aws:s3:::b/k", context).allowed is holds
    )


def test_an_unknown_condition_operator_fails_closed():
    odd = {"IpAddressLike": {"aws:SourceIp": "10.0.0.0/8"}}
    assert not iam_policy.evaluate(
        policy(allow("s3:*", "*", Condition=odd)), "s3:GetObject", "x", {}
    ).allowed
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": odd}
    decision = iam_policy.evaluate(policy(allow("s3:*", "*"), deny), "s3:GetObject", "x", {})
    assert not decision.allowed
    assert "not evaluated" in decision.reason


OBJECT = "arn:aws:s3:::uploads/in/a.jpg"


@pytest.mark.parametrize(
    ("method", "query", "headers", "expected"),
    [
        ("GET", {}, {}, [("s3:GetObject", OBJECT)]),
        ("HEAD", {"versionId": ["v1"]}, {}, [("s3:GetObjectVersion", OBJECT)]),
        (
            "GET",
            {"versionId": ["v1"], "tagging": [""]},
            {},
            [("s3:GetObjectVersionTagging", OBJECT)],
        ),
        ("DELETE", {"versionId": ["v1"]}, {}, [("s3:DeleteObjectVersion", OBJECT)]),
        ("DELETE", {}, {}, [("s3:DeleteObject", OBJECT)]),
        (
            "PUT",
            {},
            {"x-amz-copy-source": "/src/k%20y?versionId=3"},
            [("s3:PutObject", OBJECT), ("s3:GetObjectVersion", "arn:aws:s3:::src/k y")],
        ),
        ("POST", {"uploads": [""]}, {}, [("s3:PutObject", OBJECT)]),
    ],
)
def test_object_requests_are_the_actions_s3_authorises(method, query, headers, expected):
    assert iam.s3_actions(method, query, headers, OBJECT) == expected


def test_delete_objects_deletes_each_key_and_a_form_post_puts_its_key():
    body = (
        b"<Delete><Object><Key>r/a&amp;b.jpg</Key></Object><Object><Key>r/c</Key></Object></Delete>"
    )
    assert iam.s3_actions("POST", {"delete": [""]}, {}, "arn:aws:s3:::b", body=body) == [
        ("s3:DeleteObject", "arn:aws:s3:::b/r/a&b.jpg"),
        ("s3:DeleteObject", "arn:aws:s3:::b/r/c"),
    ]
    form = {"key": ["uploads/x.jpg"], "policy": ["..."]}
    assert iam.s3_actions("POST", form, {}, "arn:aws:s3:::b") == [
        ("s3:PutObject", "arn:aws:s3:::b/uploads/x.jpg")
    ]
    assert iam.s3_actions("HEAD", {}, {}, "arn:aws:s3:::b", operation="HeadBucket") == [
        ("s3:ListBucket", "arn:aws:s3:::b")
    ]


SECRET = "s3cr3t"


def _s3(endpoint="https://127.0.0.1:4900"):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="ASIAEXAMPLE",
        aws_secret_access_key=SECRET,
        aws_session_token="token/with+odd=chars",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _signed(url: str, kind: str = "query") -> tuple[iam.Signed, str]:
    parts = urlsplit(url)
    raw_uri = f"{parts.path}?{parts.query}"
    fields = {k.lower(): v[0] for k, v in iam.parse_query(parts.query).items()}
    scope = fields["x-amz-credential"].split("/")
    signed = iam.Signed(
        kind, scope[0], fields.get("x-amz-security-token"), scope[2], scope[3], scope[1], fields
    )
    return signed, raw_uri


@pytest.mark.parametrize(
    "key", ["uploads/a b.jpg", "uploads/plus+eq=.jpg", "uploads/é ü/☕.jpg", "uploads/t~(x)!*'.jpg"]
)
def test_a_presigned_url_is_verified_with_its_signers_secret(key):
    url = _s3().generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": key}, ExpiresIn=60
    )
    signed, raw_uri = _signed(url)
    headers = {"host": "127.0.0.1:4900"}
    assert iam.verify_presigned(signed, SECRET, "GET", raw_uri, headers) is None
    assert (
        iam.verify_presigned(signed, "other", "GET", raw_uri, headers)
        == "the URL's signature does not match"
    )
    assert iam.verify_presigned(signed, SECRET, "DELETE", raw_uri, headers) is not None


def test_an_expired_presigned_url_is_refused(monkeypatch):
    url = _s3().generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=5
    )
    signed, raw_uri = _signed(url)
    monkeypatch.setattr(time, "time", lambda: 10**10)
    assert (
        iam.verify_presigned(signed, SECRET, "GET", raw_uri, {"host": "127.0.0.1:4900"})
        == "Request has expired"
    )


def test_a_presigned_posts_policy_signature_is_verified():
    post = _s3().generate_presigned_post("b", "uploads/k.jpg", ExpiresIn=60)
    fields = {k.lower(): v for k, v in post["fields"].items()}
    scope = fields["x-amz-credential"].split("/")
    signed = iam.Signed(
        "form", scope[0], fields["x-amz-security-token"], scope[2], scope[3], scope[1], fields
    )
    assert iam.verify_presigned(signed, SECRET, "POST", "/b", {}) is None
    assert iam.verify_presigned(signed, "other", "POST", "/b", {}) is not None


ROLES = {
    "app-worker-role": {
        "arn": "arn:aws:iam::1:role/app-worker-role",
        "policies": {
            "least": {
                "Statement": [
                    {
                        "Sid": "Read",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                        "Resource": "arn:aws:s3:::u/in/*",
                    },
                    {
                        "Sid": "Items",
                        "Effect": "Allow",
                        "Action": "dynamodb:UpdateItem",
                        "Resource": TABLE,
                    },
                ]
            }
        },
    }
}


def _call(action, resource, decision="allow", caller="app-worker"):
    principal = "arn:aws:sts::1:assumed-role/app-worker-role/app-worker"
    return {
        "principal": principal,
        "role": "app-worker-role",
        "function": "app-worker",
        "caller": caller,
        "action": action,
        "resource": resource,
        "decision": decision,
        "reason": "",
        "count": 2,
        "test": "t::one",
    }


def test_used_versus_granted_names_what_no_test_used_and_why():
    calls = [
        _call("s3:GetObject", "arn:aws:s3:::u/in/x.jpg"),
        _call("dynamodb:UpdateItem", TABLE, caller=iam_report.PROBE),  # a probe uses nothing
        _call("s3:PutObject", "arn:aws:s3:::r/x", decision="deny", caller=iam_report.PROBE),
    ]
    result = iam_report.compare([(ROLES, calls)], prefix="app")
    assert [(g.function, g.sid, g.action, g.used, g.test) for g in result.grants if g.used] == [
        ("worker", "Read", "s3:GetObject", 2, "t::one")
    ]
    assert {(g.sid, g.action) for g in result.unexplained} == {
        ("Read", "s3:GetObjectVersion"),
        ("Items", "dynamodb:UpdateItem"),
    }
    assert not result.denials  # the probe's denial is the negative test's business
    assert not result.ok

    explained = {
        ("worker", "Read", "s3:GetObjectVersion"): "versioned buckets only",
        ("worker", "Items", "dynamodb:UpdateItem"): "reason",
        ("worker", "Gone", "s3:PutObject"): "no longer granted",
    }
    result = iam_report.compare([(ROLES, calls)], prefix="app", explained=explained)
    assert not result.unexplained
    assert result.stale == [(("worker", "Gone", "s3:PutObject"), "no such grant")]
    lines = iam_report.render(result)
    assert any("versioned buckets only" in line for line in lines)


def test_a_denied_call_fails_the_comparison_by_name():
    calls = [_call("dynamodb:PutItem", TABLE, decision="deny")]
    result = iam_report.compare([(ROLES, calls)], prefix="app", explained={})
    assert result.denials
    assert any(
        line.startswith("DENIED: app-worker dynamodb:PutItem") for line in iam_report.render(result)
    )


def test_merge_names_the_test_during_which_a_call_was_first_made():
    snapshot = {
        "roles": ROLES,
        "tests": {"0": "t::a", "10": "t::b"},
        "calls": [
            {**_call("s3:GetObject", "r"), "first": 12},
            {**_call("s3:GetObject", "s"), "first": 3},
        ],
    }
    [(_, calls)] = iam_report.stacks_of([snapshot])
    assert [c["test"] for c in calls] == ["t::b", "t::a"]


def test_each_stack_is_compared_with_its_own_roles():
    def stack(stream: str) -> tuple[dict, list]:
        roles = {
            "app-notifier-role": {
                "policies": {
                    "p": {
                        "Statement": [
                            {
                                "Sid": "Stream",
                                "Effect": "Allow",
                                "Action": "dynamodb:GetRecords",
                                "Resource": stream,
                            }
                        ]
                    }
                }
            }
        }
        call = {**_call("dynamodb:GetRecords", stream), "role": "app-notifier-role"}
        return roles, [call]

    result = iam_report.compare([stack("s/1"), stack("s/2")], prefix="app", explained={})
    assert result.ok
    assert [g.used for g in result.grants] == [4]


def test_a_sigv2_presigned_posts_policy_signature_is_verified():
    s3 = boto3.client(
        "s3",
        endpoint_url="https://127.0.0.1:4900",
        region_name="us-east-1",
        aws_access_key_id="ASIAEXAMPLE",
        aws_secret_access_key=SECRET,
        aws_session_token="t",
        config=Config(signature_version="s3"),
    )
    fields = {k.lower(): v for k, v in s3.generate_presigned_post("b", "k")["fields"].items()}
    signed = iam.Signed("form", fields["awsaccesskeyid"], "t", "", "", "", fields)
    assert iam.verify_presigned(signed, SECRET, "POST", "/b", {}) is None
    assert iam.verify_presigned(signed, "other", "POST", "/b", {}) is not None


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/media/stream/2015-05-11T21:21:33.291"


@pytest.mark.parametrize(
    ("statement", "issue"),
    [
        (
            allow(
                "dynamodb:ListStreams",
                "arn:aws:dynamodb:us-east-1:123456789012:table/media/stream/*",
            ),
            "RESOURCE_MISMATCH",
        ),
        (allow("s3:GetObject", "arn:aws:s3:::bucket"), "RESOURCE_MISMATCH"),
        (allow("dynamodb:GetItems", TABLE), "UNKNOWN_ACTION"),
        (allow("sqs:SendMessage", "*"), "RESOURCE_STAR"),
    ],
)
def test_the_linter_finds_what_aws_would_not_grant(statement, issue):

    findings = iam_lint.lint("r", "identity", _doc(statement))
    assert len(findings) == 1
    assert f": {issue}:" in findings[0]


def test_the_linter_passes_a_stream_arn_a_trust_policy_and_xray():

    identity = _doc(
        allow(["dynamodb:DescribeStream", "dynamodb:GetRecords"], STREAM),
        allow("dynamodb:ListStreams", "*"),
        allow("xray:PutTraceSegments", "*"),
    )
    assert iam_lint.lint("r", "identity", identity) == []
    trust = _doc(
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    )
    assert iam_lint.lint("r", "trust", trust) == []


def test_a_statements_action_is_used_when_one_of_its_resources_is():
    roles = {
        "app-reconciler-role": {
            "policies": {
                "p": {
                    "Statement": [
                        {
                            "Sid": "Dlq",
                            "Effect": "Allow",
                            "Action": "sqs:ChangeMessageVisibility",
                            "Resource": [
                                "arn:aws:sqs:us-east-1:1:a-dlq",
                                "arn:aws:sqs:us-east-1:1:b-dlq",
                            ],
                        }
                    ]
                }
            }
        }
    }
    call = {
        **_call("sqs:ChangeMessageVisibility", "arn:aws:sqs:us-east-1:1:a-dlq"),
        "role": "app-reconciler-role",
    }
    result = iam_report.compare([(roles, [call])], prefix="app", explained={})
    assert result.ok
    assert any("used on another of its resources" in line for line in iam_report.render(result))
