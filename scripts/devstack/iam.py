"""IAM enforced on the embedded stack: every function calls AWS as its own role, and every call
is authorised against that role's policies, as on AWS.

Who is who
    * The key ``test`` (Terraform, the tests, the CLI, the runtime reading its configuration) is
      the account's administrator: allowed everything, not recorded, its signature not checked.
    * Each function's execution environments get temporary credentials of the role Terraform
      attached to it (``Enforcement.credentials``: moto's STS ``AssumeRole``, made in process
      by the local runtime, which is the Lambda service here), session name = function name.
    * The Lambda service's own calls for a function act as that function's execution role, as
      on AWS: the SQS event source mapping's ReceiveMessage / DeleteMessage(Batch) /
      GetQueueAttributes, the DynamoDB stream mapping's ListStreams / DescribeStream /
      GetShardIterator / GetRecords and its on-failure SendMessage, and the log writes of each
      environment (``authorize_local``: CreateLogStream and PutLogEvents on its log stream,
      evaluated in process; the logs themselves go to ``.local/logs``). What the runtime reads
      to follow the deployment (functions, mappings, REST APIs, rules) it reads as the
      administrator: on AWS that is the Lambda service's own business, not the role's.
    * A presigned URL or POST acts as the principal that signed it (the API function's role):
      its credential and session token are read from the query or the form, the signature
      (of the URL, or of the POST policy) is verified with that principal's secret, its expiry
      checked, and the action authorised for that principal.

What is evaluated (``devstack/iam_policy.py``): the principal's identity policies (the role's
inline and attached managed policies, read live), Allow/Deny, Action/NotAction,
Resource/NotResource, conditions against a request context (``aws:SecureTransport``,
``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:RequestedRegion``, ``aws:CurrentTime``,
``aws:EpochTime``, ``aws:SourceIp``), with the IAM action and resource ARNs of the request as
AWS names them (``request_actions``): a versioned GET or HEAD is ``s3:GetObjectVersion``,
``PublishBatch`` is ``sns:Publish``, ``DeleteMessageBatch`` is ``sqs:DeleteMessage``, a
``DeleteObjects`` is ``s3:DeleteObject`` on every key, a ``Query`` on an index is on the index's
ARN, a ``BatchWriteItem`` is on every table it writes, ``ListStreams`` accepts only ``*``.
Besides, moto (with moto_patches 5) applies S3 bucket policies' Deny statements.

Not evaluated (docs/deploy.md lists it): resource-based policies beyond S3 bucket Denies
(queue, topic, key policies, Lambda permissions, DynamoDB resource policies; deliveries between
services, S3 -> EventBridge -> SQS, SNS -> SQS, happen inside moto and are not authorised at
all), KMS key policies and grants and the KMS calls that SSE-KMS makes on the caller's behalf,
permission boundaries, session policies, SCPs and RCPs, service-specific condition keys
(``s3:prefix``, ``dynamodb:LeadingKeys``, ...; absent from the context, so a condition on them
does not hold), credential expiry of the functions' sessions (they never expire here),
``iam:PassRole`` (Terraform is the administrator), and API Gateway's own authorisation (the
local gateway checks API keys only).

Every decision for a principal other than the administrator is recorded (``Recorder``): per
principal, caller (the ``app/<id>`` of the User-Agent: the function, ``lambda-service`` for
the runtime's pollers), action and resource, allowed or denied, and why; a denial is also
logged. ``GET /_devstack/iam`` answers it, with each role's policies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from devstack import iam_policy, moto_patches

log = logging.getLogger("devstack.iam")

ADMIN_KEYS = frozenset({"test"})
PROBE = "iam-probe"  # the session name of the negative tests' credentials of a role
ACCOUNT = "123456789012"
MAX_DECISIONS = 200_000
MAX_DENIALS = 2_000

# IAM's name for an operation where it is not the operation's own (per signing name).
_ACTION_NAMES = {
    "sqs": {
        "SendMessageBatch": "SendMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    },
    "sns": {"PublishBatch": "Publish"},
    "lambda": {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"},
}
_PREFIXES = {"monitoring": "cloudwatch"}  # signing name -> IAM service prefix
# Actions that accept no resource but "*" (the Service Authorization Reference).
_STAR_ONLY = {
    "dynamodb:ListStreams",
    "dynamodb:ListTables",
    "sqs:ListQueues",
    "sns:ListTopics",
    "s3:ListAllMyBuckets",
    "kms:ListKeys",
    "kms:ListAliases",
    "logs:DescribeLogGroups",
    "lambda:ListFunctions",
    "events:ListRules",
    "sts:GetCallerIdentity",
}
_JSON_SERVICES = {"dynamodb", "kms", "logs", "events", "lambda", "monitoring", "sqs", "ssm"}


# ---------------------------------------------------------------------------------------------
# The record of decisions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    principal: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>, or an IAM user
    caller: str  # usage.caller_of: the function, lambda-service, ...
    action: str
    resource: str
    allowed: bool
    reason: str


class Recorder:
    """Every decision for a non-administrator principal: counted by call, denials kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[Call] = Counter()
        self._first: dict[Call, int] = {}  # the sequence number of each call's first decision
        self._overflow = 0
        self._denials: list[dict[str, Any]] = []
        self._sequence = 0

    def record(self, call: Call) -> None:
        with self._lock:
            self._sequence += 1
            if call in self._calls or len(self._calls) < MAX_DECISIONS:
                self._calls[call] += 1
                self._first.setdefault(call, self._sequence)
            else:
                self._overflow += 1
            if not call.allowed and len(self._denials) < MAX_DENIALS:
                self._denials.append(
                    {
                        "sequence": self._sequence,
                        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        **_call_dict(call),
                    }
                )
        if not call.allowed:
            log.warning(
                "IAM DENIED %s (as %s, caller %s): %s on %s: %s",
                function_of(call.principal),
                call.principal,
                call.caller,
                call.action,
                call.resource,
                call.reason,
            )

    def snapshot(self, *, calls: bool = True, denials_since: int = 0) -> dict[str, Any]:
        """The decisions so far: ``calls`` (each distinct call with its count and the sequence
        number of its first decision), and the denials after sequence ``denials_since``."""
        with self._lock:
            report: dict[str, Any] = {
                "sequence": self._sequence,
                "denials": [d for d in self._denials if d["sequence"] > denials_since],
                "overflow": self._overflow,
            }
            if calls:
                report["calls"] = sorted(
                    (
                        {**_call_dict(c), "count": n, "first": self._first[c]}
                        for c, n in self._calls.items()
                    ),
                    key=lambda c: (c["principal"], c["action"], c["resource"]),
                )
        return report


def _call_dict(call: Call) -> dict[str, Any]:
    return {
        "function": function_of(call.principal),
        "role": role_of(call.principal),
        "principal": call.principal,
        "caller": call.caller,
        "action": call.action,
        "resource": call.resource,
        "decision": "allow" if call.allowed else "deny",
        "reason": call.reason,
    }


def role_of(principal: str) -> str | None:
    match = re.match(r"^arn:[^:]+:sts::\d+:assumed-role/([^/]+)/", principal)
    return match.group(1) if match else None


def function_of(principal: str) -> str:
    """The session name of an assumed role (the function, for the runtime's sessions)."""
    return principal.rsplit("/", 1)[-1] if role_of(principal) else principal


# ---------------------------------------------------------------------------------------------
# Enforcement: the switch, the functions' credentials, in-process checks
# ---------------------------------------------------------------------------------------------


class Enforcement:
    def __init__(self, enabled: bool, region: str) -> None:
        self.enabled = enabled
        self.region = region
        self.recorder = Recorder()
        self._sessions: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def credentials(self, role_arn: str | None, session_name: str) -> dict[str, str]:
        """The AWS_* variables a function's environment (or the Lambda service acting for it)
        uses: the role's temporary credentials, or, with enforcement off, the administrator's."""
        if not self.enabled or not role_arn:
            return {
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",  # the emulator's fixed credentials
                "AWS_SESSION_TOKEN": "test",
            }
        key = (role_arn, session_name)
        with self._lock:
            if key not in self._sessions:
                from moto.sts.models import sts_backends

                account = role_arn.split(":")[4] or ACCOUNT
                assumed = sts_backends[account]["aws"].assume_role(
                    region_name=self.region,
                    role_session_name=session_name[:64],
                    role_arn=role_arn,
                    policy=None,  # type: ignore[arg-type]
                    duration=43200,
                    external_id=None,  # type: ignore[arg-type]
                )
                self._sessions[key] = {
                    "AWS_ACCESS_KEY_ID": assumed.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
                    "AWS_SESSION_TOKEN": assumed.session_token,
                }
            return dict(self._sessions[key])

    def authorize_local(
        self, role_arn: str, session_name: str, caller: str, action: str, resource: str
    ) -> bool:
        """A call the Lambda service makes for a function without a request here (its log
        writes): evaluated and recorded like any other. True when allowed (or not enforced)."""
        if not self.enabled:
            return True
        account = role_arn.split(":")[4] or ACCOUNT
        role_name = role_arn.rsplit("/", 1)[-1]
        principal = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name[:64]}"
        decision = iam_policy.evaluate(
            role_policies(account, role_name),
            action,
            resource,
            _context(principal, role_arn, self.region, secure=True),
        )
        self.recorder.record(
            Call(principal, caller, action, resource, decision.allowed, decision.reason)
        )
        return decision.allowed

    def snapshot(self, *, calls: bool = True, denials_since: int = 0) -> dict[str, Any]:
        report = self.recorder.snapshot(calls=calls, denials_since=denials_since)
        report["enforced"] = self.enabled
        if calls:
            report["roles"] = deployed_roles()
        return report


def role_policies(account: str, role_name: str) -> list[tuple[str, str]]:
    """(name, document) of the role's inline and attached managed policies, as stored now."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    policies: list[tuple[str, str]] = []
    try:
        for name in backend.list_role_policies(role_name):
            _, document = backend.get_role_policy(role_name, name)
            policies.append((name, _text(document)))
        attached, _ = backend.list_attached_role_policies(role_name)
    except Exception:
        return policies
    for policy in attached:
        version = next(v for v in policy.versions if v.is_default)
        policies.append((policy.arn, _text(version.document)))
    return policies


def deployed_roles(account: str = ACCOUNT) -> dict[str, Any]:
    """Every role that Lambda trusts, with its policies: what the used-versus-granted
    comparison compares with."""
    from moto.iam.models import iam_backends

    roles: dict[str, Any] = {}
    for role in list(iam_backends[account]["aws"].roles.values()):
        trust = _text(role.assume_role_policy_document)
        if "lambda.amazonaws.com" not in trust:
            continue
        roles[role.name] = {
            "arn": role.arn,
            "policies": {
                name: json.loads(document) for name, document in role_policies(account, role.name)
            },
        }
    return roles


def _text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _context(principal: str, role_arn: str | None, region: str, secure: bool) -> dict[str, Any]:
    now = time.time()
    return {
        "aws:SecureTransport": "true" if secure else "false",
        "aws:PrincipalArn": role_arn or principal,
        "aws:PrincipalAccount": principal.split(":")[4],
        "aws:RequestedRegion": region,
        "aws:CurrentTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now)),
        "aws:SourceIp": "127.0.0.1",
    }


# ---------------------------------------------------------------------------------------------
# What a request asks for: IAM actions and resource ARNs
# ---------------------------------------------------------------------------------------------


def _json_body(response: Any) -> dict[str, Any]:
    raw = response.raw_body if response.raw_body is not None else response.body
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        body = json.loads(raw or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _param(response: Any, name: str) -> str | None:
    value = response.querystring.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _s3_object_actions(
    method: str, query: Any, headers: Any, resource: str
) -> list[tuple[str, str]]:
    version = "Version" if "versionId" in query else ""
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return [("s3:ListMultipartUploadParts", resource)]
        for sub, name in (("acl", "Acl"), ("tagging", "Tagging"), ("attributes", "Attributes")):
            if sub in query:
                return [(f"s3:GetObject{version}{name}", resource)]
        return [(f"s3:GetObject{version}", resource)]
    if method == "PUT":
        for sub, name in (("acl", "Acl"), ("tagging", "Tagging")):
            if sub in query:
                return [(f"s3:PutObject{version}{name}", resource)]
        actions = [("s3:PutObject", resource)]
        source = headers.get("x-amz-copy-source")
        if source:  # CopyObject / UploadPartCopy also read the source
            path, _, source_query = unquote(source).lstrip("/").partition("?")
            read = "s3:GetObjectVersion" if "versionId=" in source_query else "s3:GetObject"
            actions.append((read, f"arn:aws:s3:::{path}"))
        return actions
    if method == "DELETE":
        if "uploadId" in query:
            return [("s3:AbortMultipartUpload", resource)]
        if "tagging" in query:
            return [(f"s3:DeleteObject{version}Tagging", resource)]
        return [(f"s3:DeleteObject{version}", resource)]
    if "restore" in query:
        return [("s3:RestoreObject", resource)]
    return [("s3:GetObject" if "select" in query else "s3:PutObject", resource)]


def s3_actions(
    method: str,
    query: Any,
    headers: Any,
    resource: str,
    *,
    body: bytes | str | None = None,
    operation: str | None = None,
) -> list[tuple[str, str]]:
    """The IAM actions and resources of an S3 request on ``resource`` (moto's bucket or object
    ARN; ``operation``: moto's name for a bucket request), by S3's rules: a version id makes the
    ``...Version`` actions, a copy reads its source, DeleteObjects deletes each of its keys."""
    method = method.upper()
    bucket_arn, slash, _ = resource.partition("/")
    if slash:
        return _s3_object_actions(method, query, headers, resource)
    if method == "POST" and "delete" in query:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        keys = [_xml_unescape(k) for k in re.findall(r"<Key>(.*?)</Key>", text, re.DOTALL)]
        return [("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys] or [
            ("s3:DeleteObject", bucket_arn)
        ]
    if method == "POST" and query.get("key"):  # a browser's form upload (presigned POST)
        key = query["key"][0] if isinstance(query["key"], list) else query["key"]
        return [("s3:PutObject", f"{bucket_arn}/{key}")]
    action = operation[0] if isinstance(operation, list) else operation or "ListBucket"
    action = {"HeadBucket": "ListBucket", "ListObjectsV2": "ListBucket"}.get(action, action)
    full = f"s3:{action}"
    return [(full, "*" if full in _STAR_ONLY or bucket_arn.endswith(":::*") else bucket_arn)]


def _xml_unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _dynamodb_resources(body: dict[str, Any], region: str, account: str) -> list[str]:
    def table(name: str) -> str:
        return (
            name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        )

    if "RequestItems" in body:  # BatchGetItem, BatchWriteItem: every table
        return sorted({table(t) for t in body["RequestItems"]})
    if "TableName" in body:  # a Query or Scan of an index is on the index
        arn = table(body["TableName"])
        return [f"{arn}/index/{body['IndexName']}" if body.get("IndexName") else arn]
    if "ResourceArn" in body:
        return [body["ResourceArn"]]
    if "StreamArn" in body:
        return [body["StreamArn"]]
    if "ShardIterator" in body:  # moto's iterators start with the stream ARN
        return [str(body["ShardIterator"]).split("|")[0]]
    return []


def _transact_actions(body: dict[str, Any], region: str, account: str) -> list[tuple[str, str]]:
    """A transaction is authorised item by item, for each item's own action."""
    actions = set()
    for item in body.get("TransactItems", []):
        for kind, operation in item.items():
            for arn in _dynamodb_resources(operation, region, account):
                actions.add((f"dynamodb:{_TRANSACT_ACTIONS.get(kind, kind)}", arn))
    return sorted(actions)


def _json_resources(
    target: str, operation: str, body: dict[str, Any], region: str, account: str
) -> list[str]:
    if target.startswith("Logs_"):
        group = body.get("logGroupName")
        if not group:
            return []
        base = f"arn:aws:logs:{region}:{account}:log-group:{group}"
        stream = body.get("logStreamName")
        return [f"{base}:log-stream:{stream}" if stream else f"{base}:*"]
    if target.startswith("AWSEvents.") and operation == "PutEvents":
        buses = {e.get("EventBusName") or "default" for e in body.get("Entries", [])}
        return sorted(
            b if b.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{b}"
            for b in buses
        )
    if target.startswith("AmazonSSM.") and body.get("Name"):
        name = str(body["Name"])
        if name.startswith("arn:"):
            return [name]
        return [
            f"arn:aws:ssm:{region}:{account}:parameter{'' if name.startswith('/') else '/'}{name}"
        ]
    if target.startswith("TrentService.") and body.get("KeyId"):
        key = str(body["KeyId"])
        if key.startswith("arn:"):
            return [key]
        kind = "alias/" + key[6:] if key.startswith("alias/") else "key/" + key
        return [f"arn:aws:kms:{region}:{account}:{kind}"]
    return []


def request_actions(
    response: Any, service: str, operation: str, resource: str
) -> list[tuple[str, str]]:
    """The IAM actions and resource ARNs a (non-S3) request is authorised for."""
    name = _ACTION_NAMES.get(service, {}).get(operation, operation)
    action = f"{_PREFIXES.get(service, service)}:{name}"
    if action in _STAR_ONLY:
        return [(action, "*")]
    region, account = response.region, response.current_account
    target = str(response.headers.get("X-Amz-Target") or "")
    resources: list[str] = [resource] if resource != "*" else []
    if target.startswith(("DynamoDB_", "DynamoDBStreams_")):
        body = _json_body(response)
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return _transact_actions(body, region, account) or [(action, "*")]
        resources = _dynamodb_resources(body, region, account)
    elif service == "sqs" and operation == "GetQueueUrl":
        body = _json_body(response)
        queue = body.get("QueueName") or _param(response, "QueueName")
        owner = body.get("QueueOwnerAWSAccountId") or account
        resources = [f"arn:aws:sqs:{region}:{owner}:{queue}"] if queue else []
    elif service == "sns":
        arn = next(
            (v for n in ("TopicArn", "TargetArn", "ResourceArn") if (v := _param(response, n))),
            None,
        )
        resources = [arn] if arn else []
    elif target.startswith(("Logs_", "AWSEvents.", "TrentService.", "AmazonSSM.")):
        resources = _json_resources(target, operation, _json_body(response), region, account)
    elif service == "cloudfront":  # a global service: no region in its ARNs
        match = re.match(r"^/20\d\d-\d\d-\d\d/distribution/([^/]+)", urlsplit(response.uri).path)
        resources = (
            [f"arn:aws:cloudfront::{account}:distribution/{match.group(1)}"] if match else []
        )
    else:
        match = re.match(r"^/20\d\d-\d\d-\d\d/functions/([^/]+)", urlsplit(response.uri).path)
        if match:
            function = unquote(match.group(1))
            if not function.startswith("arn:"):
                function = f"arn:aws:lambda:{region}:{account}:function:{function}"
            resources = [function]
    return [(action, r) for r in resources] or [(action, "*")]


# ---------------------------------------------------------------------------------------------
# Who signed a request: header, presigned URL, or presigned POST
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    kind: str  # header | query | form
    key_id: str
    token: str | None
    region: str
    service: str
    date: str  # yyyymmdd of the scope
    fields: dict[str, str]


def signed_by(response: Any) -> Signed | None:
    headers = response.headers
    authorization = headers.get("Authorization")
    if authorization:
        credential = authorization.partition("Credential=")[2].partition(",")[0]
        if not credential:  # SigV2 ("AWS key:signature"): only the key id
            key = authorization.partition(" ")[2].partition(":")[0]
            return Signed("header", key, headers.get("X-Amz-Security-Token"), "", "", "", {})
        parts = credential.split("/")
        return Signed(
            "header",
            parts[0],
            headers.get("X-Amz-Security-Token"),
            parts[2],
            parts[3],
            parts[1],
            {},
        )
    query = {
        k.lower(): (v[0] if isinstance(v, list) else v) for k, v in response.querystring.items()
    }
    credential = query.get("x-amz-credential")
    if credential:
        parts = credential.split("/")
        form = getattr(response, "form_data", None) or {}
        kind = "form" if "policy" in {k.lower() for k in form} or "policy" in query else "query"
        return Signed(
            kind, parts[0], query.get("x-amz-security-token"), parts[2], parts[3], parts[1], query
        )
    if "awsaccesskeyid" in query:  # SigV2, a query or a form
        form = getattr(response, "form_data", None) or {}
        kind = "form" if "policy" in {k.lower() for k in form} or "policy" in query else "query"
        return Signed(
            kind, query["awsaccesskeyid"], query.get("x-amz-security-token"), "", "", "", query
        )
    return None


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def verify_presigned(
    signed: Signed, secret: str, method: str, raw_uri: str, headers: Any
) -> str | None:
    """Why a presigned URL or POST does not hold (None: its signature is right and in time)."""
    fields = signed.fields
    if signed.kind == "form":
        policy = fields.get("policy", "")
        if "x-amz-signature" in fields:  # SigV4
            key = _signing_key(secret, signed.date, signed.region, signed.service)
            expected = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
            given = fields["x-amz-signature"]
        else:  # SigV2: base64 of the policy's HMAC-SHA1
            digest = hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()
            expected, given = base64.b64encode(digest).decode(), fields.get("signature", "")
        if not hmac.compare_digest(expected, given):
            return "the POST policy's signature does not match"
        return None
    if "x-amz-credential" not in fields:
        return "SigV2 presigned URLs are not verified here: sign with s3v4"
    key = _signing_key(secret, signed.date, signed.region, signed.service)
    amz_date = fields.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(fields.get("x-amz-expires", "0"))
    except ValueError:
        return "the URL's date or expiry cannot be read"
    if time.time() > signed_at.timestamp() + expires:
        return "Request has expired"
    path, _, query = raw_uri.partition("?")
    pairs = [p.partition("=") for p in query.split("&") if p]
    canonical_query = "&".join(
        f"{k}={v}" for k, _, v in sorted(pairs) if k.lower() != "x-amz-signature"
    )
    signed_headers = fields.get("x-amz-signedheaders", "host").split(";")
    canonical_headers = "".join(
        f"{h}:{' '.join(str(headers.get(h, '')).split())}\n" for h in signed_headers
    )
    canonical = "\n".join(
        [
            method.upper(),
            path,
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{signed.date}/{signed.region}/{signed.service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
        return "the URL's signature does not match"
    return None


# ---------------------------------------------------------------------------------------------
# The moto hook
# ---------------------------------------------------------------------------------------------

_installed: Enforcement | None = None


def install(enforcement: Enforcement) -> None:
    """Authorise every request to moto through ``enforcement`` (after moto_patches.apply())."""
    global _installed
    from moto import settings
    from moto.core import authorization
    from moto.iam import access_control

    first = _installed is None
    _installed = enforcement
    if not first:
        return
    # moto's own switch: on, or the moto handlers skip their checks altogether
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # type: ignore[attr-defined]

    make_request = access_control.IAMRequestBase._create_aws_request

    def empty_body_is_empty(self: Any) -> Any:
        # moto hashes its parsed-parameters dict (a copy of the headers) for a request with no
        # body, so every REST GET and DELETE without a query failed its signature check.
        request = make_request(self)
        content_type = str(self._headers.get("Content-Type", ""))
        if not self._body and "x-www-form-urlencoded" not in content_type:
            request.data = b""
        return request

    access_control.IAMRequestBase._create_aws_request = empty_body_is_empty  # type: ignore[method-assign]

    def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        current = _installed
        if current is None or not current.enabled:
            return
        if (
            self.headers.get("X-Amz-Target")
            in authorization.ActionAuthenticatorMixin.PUBLIC_OPERATIONS
        ):
            return
        _authorize(current, self, iam_request_cls, resource)

    authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]


def _authorize(
    enforcement: Enforcement, response: Any, iam_request_cls: type, resource: str
) -> None:
    from moto.iam import access_control

    is_s3 = iam_request_cls is access_control.S3IAMRequest
    signed = signed_by(response)
    if signed is None:
        _deny_anonymous(response, is_s3)
        return
    if signed.key_id in ADMIN_KEYS:
        return  # the administrator: Terraform, the tests, the runtime's configuration reads
    partition_headers = {"X-Amz-Security-Token": signed.token} if signed.token else {}
    if signed.kind == "header":
        path = response.raw_path
        query = urlsplit(response.uri).query
        if query:
            path += "?" + query
        request = iam_request_cls(
            account_id=response.current_account,
            method=response.method,
            path=path,
            data=response.data,
            body=response.raw_body,
            headers=response.headers,
            action=response._get_action(),
        )
        request.check_signature()
        access_key = request._access_key
    else:
        try:
            access_key = access_control.create_access_key(
                response.current_account, "aws", signed.key_id, partition_headers
            )
        except access_control.CreateAccessKeyFailure as failure:
            _raise_invalid_key(is_s3, failure.reason)
        problem = verify_presigned(
            signed,
            access_key.create_credentials().secret_key,
            response.method,
            getattr(moto_patches.request_context, "raw_uri", "") or response.raw_path,
            response.headers,
        )
        if problem:
            _raise(is_s3, "s3", "AccessDenied", problem, response)
    principal = access_key.arn
    role = role_of(principal)
    role_arn = f"arn:aws:iam::{principal.split(':')[4]}:role/{role}" if role else None
    service = "s3" if is_s3 else (signed.service or response.service_name)
    if is_s3:
        wanted = s3_actions(
            response.method,
            response.querystring,
            response.headers,
            resource,
            body=response.raw_body if response.raw_body is not None else response.body,
            operation=response.data.get("Action") if isinstance(response.data, dict) else None,
        )
    else:
        operation = response._get_action()
        wanted = request_actions(response, service, operation, resource)
    if is_s3:
        wanted += _list_for_missing_key(response, wanted)
    policies = [
        (str(getattr(p, "arn", "") or f"policy-{i}"), _policy_text(p))
        for i, p in enumerate(access_key.collect_policies())
    ]
    secure = bool(getattr(moto_patches.request_context, "secure", True))
    context = _context(principal, role_arn, response.region, secure)
    caller = getattr(moto_patches.request_context, "caller", "other")
    for action, arn in wanted:
        decision = iam_policy.evaluate(policies, action, arn, context)
        enforcement.recorder.record(
            Call(principal, caller, action, arn, decision.allowed, decision.reason)
        )
        if not decision.allowed:
            why = (
                "with an explicit deny in an identity-based policy"
                if decision.reason.startswith("explicit deny")
                else f"because no identity-based policy allows the {action} action"
            )
            message = (
                f"User: {principal} is not authorized to perform: {action} on resource: {arn} {why}"
            )
            _raise(is_s3, service, "AccessDenied", message, response)


def _list_for_missing_key(response: Any, wanted: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """S3 answers a read of a key that does not exist with 404 only to a caller allowed
    s3:ListBucket on the bucket; to anyone else with 403, not to tell what exists."""
    if len(wanted) != 1 or wanted[0][0] not in ("s3:GetObject", "s3:GetObjectVersion"):
        return []
    from moto.s3.models import s3_backends

    bucket_arn, _, key = wanted[0][1].partition("/")
    bucket = bucket_arn.rsplit(":", 1)[-1]
    version = _param(response, "versionId")
    try:
        found = s3_backends[response.current_account]["aws"].get_object(bucket, key, version)
    except Exception:  # no such bucket, a malformed version id: moto answers those
        return []
    return [] if found is not None else [("s3:ListBucket", bucket_arn)]


def _policy_text(policy: Any) -> str:
    from moto.iam.models import Policy

    if isinstance(policy, Policy):
        return _text(next(v for v in policy.versions if v.is_default).document)
    if isinstance(policy, dict):
        return _text(policy.get("policy_document", policy))
    return _text(policy)


def _deny_anonymous(response: Any, is_s3: bool) -> None:
    # An unsigned request: S3 answers it for public objects, which no bucket here has.
    _raise(
        is_s3, "s3" if is_s3 else response.service_name, "AccessDenied", "Access Denied", response
    )


def _raise_invalid_key(is_s3: bool, reason: str) -> None:
    from moto.core.exceptions import InvalidClientTokenIdError
    from moto.s3.exceptions import S3InvalidAccessKeyIdError, S3InvalidTokenError

    if is_s3:
        raise S3InvalidTokenError() if reason == "InvalidToken" else S3InvalidAccessKeyIdError()
    raise InvalidClientTokenIdError()


def _raise(is_s3: bool, service: str, code: str, message: str, response: Any) -> None:
    """An AWS-shaped denial: S3's XML, the JSON services' AccessDeniedException (botocore
    cannot read moto's XML error on a JSON protocol), the query services' XML ErrorResponse."""
    from moto.core.exceptions import JsonRESTError, _RESTError

    if is_s3:
        from moto.s3.exceptions import S3ClientError

        class S3Denied(S3ClientError):
            code = 403

        raise S3Denied(code, message)
    if service in _JSON_SERVICES:
        error = JsonRESTError(
            "AccessDenied" if service == "sqs" else "AccessDeniedException", message
        )
        error.code = 403 if service in ("lambda", "sqs") else 400
        raise error

    class QueryDenied(_RESTError):
        code = 403

    raise QueryDenied(code, message)


def parse_query(query: str) -> dict[str, list[str]]:
    """A query string's parameters, decoded (tests read presigned URLs with it)."""
    return parse_qs(query, keep_blank_values=True)
