"""Used versus granted: each function role's permissions against what the e2e suite used.

A *grant* is one action of one ``Allow`` statement on one of its resources (wildcards
expanded against the calls, not against AWS). A grant is *used* when a call that the embedded
stack allowed for that role (``GET /_devstack/iam``) matches it, and a statement's action is
used when it is used on any of the statement's resources; calls made on purpose by the
negative tests (session or caller ``iam-probe``) do not count. A grant no test used must be in
``EXPLAINED`` with the reason it exists anyway; an explanation for a grant that no longer
exists is reported too, so that the list stays true.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.iam import PROBE
from devstack.iam_policy import action_matches, resource_matches

# (function, statement Sid, action) -> why it is granted although no e2e test exercises it.
# function: the function's name without the deployment's prefix (thumbnail, api, ...).
_VERSIONED = (
    "only with uploads_versioning (on in the production example): an event then names the "
    "object's version, and the object is read by its version id"
)
EXPLAINED: dict[tuple[str, str, str], str] = {
    ("thumbnail", "ReadUploads", "s3:GetObjectVersion"): _VERSIONED,
    ("metadata", "ReadUploads", "s3:GetObjectVersion"): _VERSIONED,
    ("reconciler", "ReadUploads", "s3:GetObjectVersion"): (
        f"{_VERSIONED} (the dead-letter sweep HEADs the version its job names)"
    ),
    ("metadata", "TellMissingFromForbidden", "s3:ListBucket"): (
        "an original deleted between its event and the worker's read must answer 404 (the job "
        "is dropped) rather than 403 (retried until its DLQ): S3 answers 404 only with "
        "ListBucket; the thumbnail worker's same statement is exercised by the deletions"
    ),
    ("reconciler", "ListUploads", "s3:ListBucket"): (
        "the orphans sweep (make reconcile ARGS=--orphans) lists the uploads, and a HEAD of an "
        "upload deleted since must answer 404; the scheduled sweeps do not list"
    ),
    ("reconciler", "EnqueueJobs", "sqs:SendMessage"): (
        "the stuck and orphan sweeps send the jobs of items waiting longer than the jobs' whole "
        "retry window (8 minutes locally), longer than any e2e test waits; "
        "tests/integration/test_reconciler.py covers them in process"
    ),
    ("notifier", "KeepFailedBatches", "sqs:SendMessage"): (
        "the stream mapping's on-failure destination: Lambda sends the record of a batch the "
        "notifier gave up on (after its retries) with the notifier's role"
    ),
}


@dataclass
class Grant:
    function: str
    policy: str
    sid: str
    action: str
    resource: str
    used: int = 0
    test: str = ""  # a test during which a call first used it
    examples: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    grants: list[Grant]
    unexplained: list[Grant]  # granted, unused, no reason given
    explained: list[tuple[Grant, str]]  # granted, unused, with the reason
    stale: list[tuple[tuple[str, str, str], str]]  # explanations that no longer apply
    denials: list[dict[str, Any]]  # calls denied (not the probes')
    ungranted: list[dict[str, Any]]  # allowed calls no Allow statement matched (never, in theory)

    @property
    def ok(self) -> bool:
        return not (self.unexplained or self.stale or self.denials or self.ungranted)


def short_name(role: str, prefix: str) -> str:
    """``media-pipeline-notifier-role`` -> ``notifier`` (the deployment's prefix and -role off)."""
    name = role.removesuffix("-role")
    return name.removeprefix(f"{prefix}-") if prefix else name


def grants_of(roles: Mapping[str, Any], prefix: str) -> list[Grant]:
    grants = []
    for role, spec in sorted(roles.items()):
        function = short_name(role, prefix)
        for policy_name, document in sorted(spec["policies"].items()):
            statements = document.get("Statement", [])
            for index, statement in enumerate(
                statements if isinstance(statements, list) else [statements]
            ):
                if statement.get("Effect") != "Allow":
                    continue
                sid = str(statement.get("Sid") or index)
                actions = statement.get("Action", [])
                resources = statement.get("Resource", [])
                for action in actions if isinstance(actions, list) else [actions]:
                    for resource in resources if isinstance(resources, list) else [resources]:
                        grants.append(Grant(function, policy_name, sid, action, resource))
    return grants


Stack = tuple[Mapping[str, Any], Iterable[Mapping[str, Any]]]  # (roles, calls) of one stack


def compare(
    stacks: Iterable[Stack],
    *,
    prefix: str,
    explained: Mapping[tuple[str, str, str], str] = EXPLAINED,
) -> Comparison:
    """Each stack's calls against its own roles (ARNs such as a stream's differ between
    stacks), the uses added up by grant: function, statement, action, and the resource's
    place in the statement."""
    grants: dict[tuple[str, str, str, str, int], Grant] = {}
    denials: list[dict[str, Any]] = []
    ungranted: list[dict[str, Any]] = []
    for roles, calls in stacks:
        own = grants_of(roles, prefix)
        keyed = []
        places: dict[tuple[str, str, str, str], int] = {}
        for grant in own:
            place = (grant.function, grant.policy, grant.sid, grant.action)
            places[place] = places.get(place, -1) + 1
            keyed.append(((*place, places[place]), grant))
        for key, grant in keyed:
            grants.setdefault(key, grant)
        by_function: dict[str, list[Grant]] = {}
        for key, grant in keyed:
            by_function.setdefault(grant.function, []).append(grants[key])
        pattern = {id(grants[key]): grant.resource for key, grant in keyed}
        for call in calls:
            if PROBE in (call["caller"], call.get("function")) or not call.get("role"):
                continue
            if call["decision"] != "allow":
                denials.append(dict(call))
                continue
            matched = [
                g
                for g in by_function.get(short_name(call["role"], prefix), [])
                if action_matches([g.action], call["action"])
                and resource_matches([pattern[id(g)]], call["resource"])
            ]
            if not matched:
                ungranted.append(dict(call))
            for grant in matched:
                grant.used += int(call.get("count", 1))
                grant.test = grant.test or call.get("test", "")
                if len(grant.examples) < 3 and call["resource"] not in grant.examples:
                    grant.examples.append(call["resource"])
    every = list(grants.values())
    return Comparison(every, *_unused(every, explained), denials, ungranted)


def _unused(
    grants: list[Grant], explained: Mapping[tuple[str, str, str], str]
) -> tuple[list[Grant], list[tuple[Grant, str]], list[tuple[tuple[str, str, str], str]]]:
    """The unused grants without a reason, those with one, and the reasons that are stale."""
    unexplained, reasons = [], []
    keys = {(g.function, g.sid, g.action) for g in grants}
    # A statement's action is used when it is used on any of the statement's resources (the
    # reconciler's dead letters: a DLQ holds one only when that worker's job failed for good).
    used = {(g.function, g.sid, g.action) for g in grants if g.used}
    for grant in grants:
        if (grant.function, grant.sid, grant.action) in used:
            continue
        reason = explained.get((grant.function, grant.sid, grant.action))
        if reason is None:
            unexplained.append(grant)
        else:
            reasons.append((grant, reason))
    # A grant used by chance in one run (an event overtaken by a delete) keeps its reason.
    stale = [(key, "no such grant") for key in explained if key not in keys]
    return unexplained, reasons, stale


def _unused_note(grant: Grant, comparison: Comparison) -> str:
    if any(grant is g for g in comparison.unexplained):
        return "**UNEXPLAINED**"
    return "the statement's action is used on another of its resources"


def render(comparison: Comparison) -> list[str]:
    """The comparison as Markdown lines: one row per grant, then what is wrong, if anything."""
    lines = [
        "| function | statement | action | resource | calls | first used in | or why granted |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    reasons = {id(g): r for g, r in comparison.explained}
    for g in comparison.grants:
        lines.append(
            f"| {g.function} | {g.sid} | {g.action} | {g.resource} | {g.used} | "
            f"{g.test} | {reasons.get(id(g), '' if g.used else _unused_note(g, comparison))} |"
        )
    for g in comparison.unexplained:
        lines.append(
            f"UNUSED: {g.function}: {g.sid} grants {g.action} on {g.resource}, which no test used "
            "and devstack/iam_report.py EXPLAINED gives no reason for"
        )
    for key, why in comparison.stale:
        lines.append(f"STALE EXPLANATION: {key}: {why}")
    for call in comparison.denials:
        lines.append(
            f"DENIED: {call['function']} {call['action']} on {call['resource']} "
            f"({call['reason']}; caller {call['caller']})"
        )
    for call in comparison.ungranted:
        lines.append(
            f"ALLOWED WITHOUT A GRANT: {call['function']} {call['action']} on {call['resource']}"
        )
    return lines


def stacks_of(snapshots: Iterable[Mapping[str, Any]]) -> list[Stack]:
    """(roles, calls) of each stack's snapshot (the e2e workers' stacks), each call named with
    the test during which it was first made on its stack (``tests``: the decision sequence
    number at which each test began)."""
    stacks: list[Stack] = []
    for snapshot in snapshots:
        starts = sorted((int(k), v) for k, v in (snapshot.get("tests") or {}).items())
        calls = []
        for call in snapshot.get("calls") or []:
            test = ""
            for start, name in starts:
                if start >= call.get("first", 0):
                    break
                test = name
            calls.append({**call, "test": test})
        stacks.append((snapshot.get("roles") or {}, calls))
    return stacks
