"""The capacity and cost model of ``make capacity``: pure functions of one measured run.

``scripts/capacity.py`` runs a workload on an embedded stack and hands this module what it
measured (a ``measurement``: the stack's usage counted before and after, the runtime's
invocations, log bytes, what is deployed and the production settings); :func:`model` turns it
into per-image figures, hot keys, ceilings (uploads per second each limit allows) and the cost
per million images, each priced from ``docs/aws-prices.toml``. Nothing here knows the product's
tables, functions or attribute names: they come from the measurement. What each figure means:
docs/operations.md, "Capacity".
"""

from __future__ import annotations

import math
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PRICES = ROOT / "docs" / "aws-prices.toml"

# Callers (the app id of a request's User-Agent; devstack/usage.py).
APP = "capacity-app"  # the workload's app: uploads through the API, the drain of its queue
PROBE = "capacity-probe"  # the tool reading what is deployed: not part of the workload
TERRAFORM = "terraform"
LAMBDA_SERVICE = "lambda-service"
RUNTIME_INTERNAL = "devstack-runtime"
OTHER = "other"

DESIGN, HARD, QUOTA, SETTING = (
    "design key",
    "AWS hard limit",
    "AWS adjustable quota, default value",
    "deployment setting",
)
PER_DEPLOYMENT, PER_APP = "per deployment", "per app"
GIB = 1024**3
SECONDS_PER_MONTH = 30 * 24 * 3600


# ---------------------------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    name: str
    value: float
    per: float
    unit: str
    source: str
    date: str
    basis: str
    confirmed: bool

    @property
    def rate(self) -> float:
        """The value per one unit (per request, per GB-second, per byte-month ...)."""
        return self.value / self.per


@dataclass(frozen=True)
class Prices:
    researched: str
    region: str
    entries: dict[str, Price]

    def __getitem__(self, name: str) -> Price:
        return self.entries[name]


def load_prices(path: Path = PRICES) -> Prices:
    raw = tomllib.loads(path.read_text())
    meta = raw.pop("file")
    entries = {}
    for group, items in raw.items():
        for name, entry in items.items():
            key = f"{group}.{name}"
            entries[key] = Price(
                name=key,
                value=float(entry["value"]),
                per=float(entry["per"]),
                unit=entry["unit"],
                source=entry["source"],
                date=str(entry["date"]),
                basis=entry["basis"],
                confirmed=bool(entry["confirmed"]),
            )
    return Prices(str(meta["researched"]), meta["region"], entries)


# ---------------------------------------------------------------------------------------------
# The difference of two usage answers (GET /_devstack/usage)
# ---------------------------------------------------------------------------------------------


def subtract_rows(
    after: Iterable[Mapping[str, Any]],
    before: Iterable[Mapping[str, Any]],
    numeric: Sequence[str],
) -> list[dict[str, Any]]:
    """Rows of ``after`` less the matching rows of ``before`` (rows match on every field not in
    ``numeric``); rows that did not change are left out."""

    def key(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(sorted((k, v) for k, v in row.items() if k not in numeric))

    earlier = {key(row): row for row in before}
    found = []
    for row in after:
        old = earlier.get(key(row), {})
        changed = {n: row.get(n, 0) - old.get(n, 0) for n in numeric if n in row}
        if any(changed.values()):
            found.append({**row, **changed})
    return found


def usage_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What was used between two usage answers of the same stack."""
    old_db, new_db = before["dynamodb"], after["dynamodb"]
    old_keys = {(k["table"], k["index"], k["key"]): k for k in old_db["keys"]}
    keys = []
    for row in new_db["keys"]:
        old = old_keys.get((row["table"], row["index"], row["key"]), {})
        old_items = old.get("items", {})
        items = [i for i, n in row["items"].items() if n > old_items.get(i, 0)]
        wu, ru = row["wu"] - old.get("wu", 0), row["ru"] - old.get("ru", 0)
        if wu or ru or items:
            keys.append({**row, "wu": wu, "ru": ru, "items": items})
    sequence = before["s3"]["sequence"]
    numbers = ("requests", "units", "items", "failed", "returned", "scanned")
    return {
        "requests": subtract_rows(after["requests"], before["requests"], ["count"]),
        "s3": {
            "requests": subtract_rows(after["s3"]["requests"], before["s3"]["requests"], ["count"]),
            "stored": subtract_rows(after["s3"]["stored"], before["s3"]["stored"], ["value"]),
            "keys": {
                bucket: [key for number, key in kept if number > sequence]
                for bucket, kept in after["s3"]["keys"].items()
            },
        },
        "sqs": subtract_rows(after["sqs"], before["sqs"], ["count"]),
        "events": {
            "matched": subtract_rows(
                after["events"]["matched"], before["events"]["matched"], ["count"]
            ),
            "rules": _subtract_counts(after["events"]["rules"], before["events"]["rules"]),
            "targets": _subtract_counts(after["events"]["targets"], before["events"]["targets"]),
        },
        "dynamodb": {
            "tables": new_db["tables"],
            "capacity": subtract_rows(new_db["capacity"], old_db["capacity"], numbers),
            "index_writes": subtract_rows(
                new_db["index_writes"], old_db["index_writes"], ["count", "units"]
            ),
            "keys": keys,
            "storage": subtract_rows(new_db["storage"], old_db["storage"], ["value"]),
            "unmodelled": subtract_rows(new_db["unmodelled"], old_db["unmodelled"], ["count"]),
            "dropped": _subtract_counts(new_db["dropped"], old_db["dropped"]),
        },
    }


def _subtract_counts(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


# ---------------------------------------------------------------------------------------------
# Who made a request
# ---------------------------------------------------------------------------------------------

PIPELINE = "pipeline"  # the workload's own requests: functions, the Lambda service, uploads
SUBSCRIBER = "subscriber"  # the app reading its notifications
SCHEDULED = "scheduled"  # functions run by a schedule: per period, not per image
POLLING = "polling"  # the app asking the API how an image is doing (the workload does not)
EXCLUDED = "excluded"  # Terraform, the tool's probes, the runtime reading its configuration


def role(caller: str, service: str, operation: str, scheduled: set[str]) -> str:
    """What a request is to the model (by its caller, service and operation)."""
    if caller in (TERRAFORM, PROBE, RUNTIME_INTERNAL):
        return EXCLUDED
    if caller == APP:
        if service == "execute-api" and operation.startswith("GET "):
            return POLLING
        return PIPELINE if service in ("execute-api", "s3") else SUBSCRIBER
    if caller in scheduled:
        return SCHEDULED
    if caller == OTHER:
        return EXCLUDED
    return PIPELINE


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def billed_ms(entry: Mapping[str, Any]) -> int:
    """Lambda's billed duration of one invocation: its duration rounded up to the millisecond,
    plus its INIT rounded up the same way (billed since 2025-08-01)."""
    return math.ceil(entry.get("duration_ms") or 0) + math.ceil(entry.get("init_ms") or 0)


def key_share(counts: Sequence[int], weights: Sequence[float]) -> tuple[float, bool]:
    """The share of a group's load the hottest of its shared key values takes, and whether the
    run spread the load evenly. Even when the largest count (images per value) is within
    mean + 3 sqrt(mean) + 2: then each value takes 1 / (number of values) (the design spreads
    it; a small run's noise is not a hot key); otherwise the observed largest share of the
    load (``weights``: units per value)."""
    values = len(counts)
    if values == 0:
        return 0.0, True
    mean = sum(counts) / values
    if max(counts) <= mean + 3 * math.sqrt(mean) + 2:
        return 1 / values, True
    total = sum(weights)
    if total > 0:
        return max(weights) / total, False
    return max(counts) / sum(counts), False


def ceiling(limit: float, per_upload: float) -> float | None:
    """Uploads per second a limit allows, when each upload uses ``per_upload`` of it."""
    return limit / per_upload if per_upload > 0 else None


@dataclass
class Row:
    limit: str
    kind: str
    value: float
    uploads_per_s: float | None
    source: str
    scope: str = PER_DEPLOYMENT
    note: str = ""
    raised_value: float | None = None  # for (b): a hard limit a setting lifts (SQS: 16x)
    binding: bool = True  # False: reported, not a ceiling (S3 prefixes that spread)

    def as_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "kind": self.kind,
            "value": self.value,
            "uploads_per_s": self.uploads_per_s,
            "source": self.source,
            "scope": self.scope,
            "note": self.note,
            "binds": self.binding,
        }


def model(measurement: Mapping[str, Any], prices: Prices) -> dict[str, Any]:
    """The report of one run (JSON): per image, hot keys, ceilings, cost per million images."""
    images = max(int(measurement["images"]["notified"]), 1)
    usage = measurement["usage"]
    deployment = measurement["deployment"]
    production = measurement["production"]
    used: set[str] = set()  # price entries used, to flag the unconfirmed ones

    def price(name: str) -> Price:
        used.add(name)
        return prices[name]

    journal = [e for e in measurement["journal"] if e.get("function")]
    scheduled = {e["function"] for e in journal if e.get("source") == "events"}
    scheduled |= set(production.get("schedules", {}))
    lam = _lambda(journal, scheduled, images, production, deployment)
    requests = _requests(usage, scheduled, images, lam, deployment)
    dynamodb = _dynamodb(usage, images)
    keys = _hot_keys(usage["dynamodb"]["keys"], deployment.get("api_key_ids", []), images, price)
    s3 = _s3(usage, images, deployment)
    logs = _logs(measurement.get("logs", {}), lam, images, price)
    report: dict[str, Any] = {
        "label": measurement.get("label"),
        "extra_formats": list(measurement.get("extra_formats") or []),
        "images": images,
        "outcomes": measurement["images"],
        "window_s": measurement.get("window_s"),
        "production_source": production.get("source"),
        "requests": requests,
        "dynamodb": dynamodb,
        "hot_keys": keys,
        "lambda": lam,
        "schedules": dict(production.get("schedules", {})),
        "logs": logs,
        "s3": s3,
        # SNS messages per image, as the workload's drain of the app events queue heard them
        "notifications_per_image": measurement["images"].get("messages", 0) / images,
    }
    report["ceilings"] = _ceilings(report, measurement, price)
    report["cost"] = _cost(report, measurement, price)
    report["serving"] = serving(report["s3"], price)
    report["prices"] = {
        "file": str(PRICES.relative_to(ROOT)),
        "researched": prices.researched,
        "region": prices.region,
        "unconfirmed": sorted(n for n in used if not prices[n].confirmed),
    }
    report["notes"] = _notes(report, measurement)
    return report


def _lambda(
    journal: list[dict[str, Any]],
    scheduled: set[str],
    images: int,
    production: Mapping[str, Any],
    deployment: Mapping[str, Any],
) -> dict[str, Any]:
    """Per function: invocations, billed ms, mean duration, records per invocation (per image,
    at the production memory), and the scheduled functions per run."""
    by_function: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in journal:
        by_function[entry["function"]].append(entry)
    functions = {}
    for name, entries in sorted(by_function.items()):
        settings = production.get("functions", {}).get(name) or {}
        local = deployment.get("functions", {}).get(name) or {}
        memory = settings.get("memory") or local.get("memory") or 128
        architecture = settings.get("architecture") or local.get("architecture") or "x86_64"
        per_image = [e for e in entries if e.get("source") != "events"]
        runs = [e for e in entries if e.get("source") == "events"]
        sources: dict[str, int] = defaultdict(int)
        for entry in per_image:
            sources[entry.get("source") or "invoke"] += 1
        ms = sum(billed_ms(e) for e in per_image)
        mean_s = (
            sum((e.get("duration_ms") or 0) + (e.get("init_ms") or 0) for e in per_image)
            / len(per_image)
            / 1000
            if per_image
            else 0.0
        )
        records = sum(len(e.get("items") or []) for e in per_image)
        fixed_s, per_record_s = duration_fit(per_image)
        functions[name] = {
            "scheduled": name in scheduled,
            "memory_mb": memory,
            "architecture": architecture,
            "invocations": len(per_image),
            "invocations_per_image": len(per_image) / images,
            "by_source": dict(sources),
            "billed_ms_per_image": ms / images,
            "gb_s_per_image": ms / 1000 * memory / 1024 / images,
            "mean_duration_s": mean_s,
            "records_per_invocation": records / len(per_image) if per_image else 0.0,
            "fixed_s": fixed_s,
            "per_record_s": per_record_s,
            "errors": sum(1 for e in per_image if e.get("error")),
            "cold_starts": sum(1 for e in entries if e.get("init_ms")),
            "scheduled_runs": len(runs),
            "billed_ms_per_run": sum(billed_ms(e) for e in runs) / len(runs) if runs else 0.0,
            "schedule": production.get("schedules", {}).get(name),
        }
    return functions


def duration_fit(entries: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """A function's warm duration as ``fixed + per_record x records`` (seconds), fitted by least
    squares over its invocations with records (cold starts left out), so that a batch size the
    run did not reach can be priced. Both parts are kept at 0 or more; with one batch size only,
    it is all per record (the larger estimate for a bigger batch)."""
    points = [
        (len(e.get("items") or []), (e.get("duration_ms") or 0) / 1000)
        for e in entries
        if e.get("items") and not e.get("init_ms")
    ]
    if not points:
        return 0.0, 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0, mean_y / mean_x
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    fixed = mean_y - slope * mean_x
    if slope < 0:
        return mean_y, 0.0
    if fixed < 0:
        return 0.0, mean_y / mean_x
    return fixed, slope


IDLE = "idle"  # empty receives of Lambda's pollers: they depend on time, not images
_DETAILED = ("s3", "sqs")  # services whose rows come from their own counts (names, outcomes)


def _request_rows(usage: Mapping[str, Any], scheduled: set[str]) -> tuple[dict, dict, dict]:
    """(rows by (service, operation) and role, scheduled functions' requests, excluded
    callers): every request of the window, S3 by its S3 operation, SQS receives by outcome."""
    rows: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    scheduled_rows: dict[str, float] = defaultdict(float)
    excluded: dict[str, float] = defaultdict(float)

    def add(service: str, operation: str, caller: str, count: float, kind: str) -> None:
        if kind == EXCLUDED:
            excluded[caller] += count
        elif kind == SCHEDULED:
            scheduled_rows[f"{service} {operation}"] += count
        else:
            rows[(service, operation)][kind] += count

    for row in usage["requests"]:
        service, operation, caller = row["service"], row["operation"], row["caller"]
        kind = role(caller, service, operation, scheduled)
        if service in _DETAILED and kind not in (EXCLUDED, SCHEDULED):
            continue  # below, from the service's own counts
        add(service, operation, caller, row["count"], kind)
    for row in usage["s3"]["requests"]:
        kind = role(row["caller"], "s3", row["operation"], scheduled)
        if kind not in (EXCLUDED, SCHEDULED):
            add("s3", row["operation"], row["caller"], row["count"], kind)
    for row in usage["sqs"]:
        kind = role(row["caller"], "sqs", row["operation"], scheduled)
        if kind in (EXCLUDED, SCHEDULED):
            continue
        operation = row["operation"]
        if row["outcome"] == "empty":
            operation += " (empty)"
            if row["caller"] == LAMBDA_SERVICE:
                kind = IDLE
        add("sqs", operation, row["caller"], row["count"], kind)
    return rows, scheduled_rows, excluded


def _requests(
    usage: Mapping[str, Any],
    scheduled: set[str],
    images: int,
    lam: Mapping[str, Any],
    deployment: Mapping[str, Any],
) -> dict[str, Any]:
    """Requests per image by service and operation, by role; plus what AWS does without an HTTP
    request the emulator sees (EventBridge's deliveries, Lambda's invocations)."""
    rows, scheduled_rows, excluded = _request_rows(usage, scheduled)
    targets = usage["events"]["targets"]
    sqs_targets = sum(n for arn, n in targets.items() if arn.split(":")[2] == "sqs")
    other_targets = sum(n for arn, n in targets.items() if arn.split(":")[2] != "sqs")
    if sqs_targets:
        rows[("sqs", "SendMessage (EventBridge to its SQS targets)")][PIPELINE] += sqs_targets
    if other_targets:
        rows[("events", "target invocations (not SQS)")][PIPELINE] += other_targets
    invocations = sum(f["invocations"] for f in lam.values())
    if invocations:
        rows[("lambda", "Invoke (by event sources and the API)")][PIPELINE] += invocations
    matched = sum(r["count"] for r in usage["events"]["matched"])
    if matched:
        rows[("events", "events matched (S3 to EventBridge)")][PIPELINE] += matched

    table = []
    for (service, operation), counts in sorted(rows.items()):
        pipeline, subscriber, polling = (counts[PIPELINE], counts[SUBSCRIBER], counts[POLLING])
        idle = counts[IDLE]
        note = ""
        if service == "dynamodbstreams":
            note = "free: read by the Lambda trigger"
        elif idle:
            note = "Lambda's pollers waiting: depends on time, not images (not per image)"
        elif service == "sqs" and "EventBridge" in operation:
            note = "not seen as HTTP: counted from EventBridge's deliveries (billing unconfirmed)"
        elif service in ("lambda", "events") and "(" in operation:
            note = "not an HTTP request to the emulator"
        table.append(
            {
                "service": service,
                "operation": operation,
                "all": (pipeline + subscriber + polling + idle) / images,
                "without_polling": (pipeline + subscriber + idle) / images,
                "pipeline": pipeline / images,
                "subscriber": subscriber / images,
                "idle": idle / images,
                "note": note,
            }
        )
    return {
        "rows": table,
        "per_image": {
            "all": sum(r["all"] for r in table),
            "without_polling": sum(r["without_polling"] for r in table),
            "pipeline": sum(r["pipeline"] for r in table),
            "api_calls": sum(r["pipeline"] for r in table if is_api_call(r)),
            "subscriber": sum(r["subscriber"] for r in table),
            "idle": sum(r["idle"] for r in table),
        },
        "scheduled_per_run": dict(scheduled_rows),
        "excluded": dict(excluded),
        "sqs_by_queue": _by_queue(usage["sqs"], scheduled, images),
        "events": {
            "matched_per_image": matched / images,
            "targets_per_image": sum(targets.values()) / images,
            "sqs_targets_per_image": sqs_targets / images,
        },
        "app_events_queue": deployment.get("app_events_queue"),
    }


SNS_PUBLISHES = {("sns", "Publish"), ("sns", "PublishBatch")}


def is_api_call(row: Mapping[str, Any]) -> bool:
    """Whether a request row is a call of an AWS service API made for the image: by the
    pipeline's functions, by Lambda's pollers (SQS receives and deletes that carried messages),
    by EventBridge (its SendMessage to a queue), or the app's POST /uploads. Not: Lambda's
    invocations of the functions (counted and priced as Lambda requests), the events EventBridge
    matches (priced as events), a DynamoDB stream's reads by the Lambda trigger (free, and made
    four times a second per shard whatever comes)."""
    service, operation = row["service"], row["operation"]
    if service == "dynamodbstreams":
        return False
    return not (service in ("lambda", "events") and "(" in operation)


def _by_queue(rows: Iterable[Mapping[str, Any]], scheduled: set[str], images: int) -> dict:
    found: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        kind = role(row["caller"], "sqs", row["operation"], scheduled)
        if kind in (PIPELINE, SUBSCRIBER):
            name = row["operation"] + (f" ({row['outcome']})" if row["outcome"] else "")
            found[row["queue"] or "?"][f"{kind}: {name}"] += row["count"] / images
    return {q: dict(v) for q, v in sorted(found.items())}


def _dynamodb(usage: Mapping[str, Any], images: int) -> dict[str, Any]:
    """Write and read units per image by table and index, index writes by kind, storage."""
    writes: dict[str, float] = defaultdict(float)
    reads: dict[str, float] = defaultdict(float)
    failed = 0.0
    reads_detail = []
    for row in usage["dynamodb"]["capacity"]:
        if role(row["caller"], "dynamodb", row["operation"], set()) in (EXCLUDED, SUBSCRIBER):
            continue
        name = row["table"] + (f"/{row['index']}" if row["index"] else "")
        if row["kind"] == "write":
            writes[name] += row.get("units", 0) / images
            failed += row.get("failed", 0) / images
        else:
            reads[name] += row.get("units", 0) / images
            if row.get("scanned"):
                reads_detail.append(
                    {
                        "target": name,
                        "operation": row["operation"],
                        "caller": row["caller"],
                        "scanned": row["scanned"],
                        "returned": row.get("returned", 0),
                    }
                )
    index_writes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in usage["dynamodb"]["index_writes"]:
        if role(row["caller"], "dynamodb", "", set()) in (EXCLUDED, SUBSCRIBER):
            continue
        index_writes[f"{row['table']}/{row['index']}"][row["kind"]] += row["count"] / images
    storage: dict[str, dict[str, float]] = defaultdict(dict)
    for row in usage["dynamodb"]["storage"]:
        name = row["table"] + (f"/{row['index']}" if row["index"] else "")
        storage[name][row["measure"]] = row["value"] / images
    tables = usage["dynamodb"]["tables"]
    per_table = {}
    for table in sorted(tables):
        own = writes.get(table, 0.0)
        indexes = {k: v for k, v in writes.items() if k.startswith(f"{table}/")}
        per_table[table] = {
            "table_wu": own,
            "index_wu": sum(indexes.values()),
            "wu": own + sum(indexes.values()),
            "ru": sum(v for k, v in reads.items() if k == table or k.startswith(f"{table}/")),
        }
    return {
        "wu_per_image": dict(sorted(writes.items())),
        "ru_per_image": dict(sorted(reads.items())),
        "total_wu_per_image": sum(writes.values()),
        "total_ru_per_image": sum(reads.values()),
        "per_table": per_table,
        "failed_conditions_per_image": failed,
        "index_writes_per_image": {k: dict(v) for k, v in sorted(index_writes.items())},
        "index_copies_per_image": sum(
            v.get("put", 0) + v.get("update", 0) for v in index_writes.values()
        ),
        "storage_per_image": dict(sorted(storage.items())),
        "query_scan": reads_detail,
        "tables": tables,
        "unmodelled": usage["dynamodb"]["unmodelled"],
        "dropped": usage["dynamodb"]["dropped"],
    }


def _images_of(items: Iterable[str]) -> int:
    """How many images wrote to a key value, told by the items they wrote (``hash`` +
    KEY_SEPARATOR + ``range``): each distinct item is one image's. A sort key names the image
    under a partition key that images share (the duplicates table's band keys: one item per
    image under ``dup#<app>#<band>:<hex>``); an item collection that was one image's would
    count as several, which makes its key look shared and spreads its load over them: the
    table's own partition is then not called "one per image", never the other way round."""
    return len(set(items))


def _hot_keys(
    keys: Iterable[Mapping[str, Any]], api_key_ids: Sequence[str], images: int, price: Any
) -> list[dict[str, Any]]:
    """Per table and index partition key: the hottest value shared by more than one image
    (per app, when it contains the app's API key id; else per deployment), its units per upload
    and the uploads per second its partition allows; and the busiest value of one image."""
    partition_wu = price("dynamodb.partition_write_units").value
    partition_ru = price("dynamodb.partition_read_units").value
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in keys:
        groups[(row["table"], row["index"])].append({**row, "images": _images_of(row["items"])})
    found = []
    for (table, index), rows in sorted(groups.items()):
        name = table + (f"/{index}" if index else "")
        shared = [r for r in rows if r["images"] > 1]
        single = [r for r in rows if r["images"] <= 1]
        for scope in (PER_APP, PER_DEPLOYMENT):
            members = [
                r
                for r in shared
                if any(k and k in r["key"] for k in api_key_ids) == (scope == PER_APP)
            ]
            if not members:
                continue
            share, even = key_share([r["images"] for r in members], [r["wu"] for r in members])
            hottest = max(members, key=lambda r: (r["wu"], r["images"]))
            wu_total = sum(r["wu"] for r in members)
            ru_total = sum(r["ru"] for r in members)
            ru_share, _ = key_share([r["images"] for r in members], [r["ru"] for r in members])
            wu = share * wu_total / images
            ru = (ru_share if ru_total else 0) * ru_total / images
            limits = [c for c in (ceiling(partition_wu, wu), ceiling(partition_ru, ru)) if c]
            found.append(
                {
                    "target": name,
                    "scope": scope,
                    "key": _without_key_ids(hottest["key"], api_key_ids),
                    "values": len(members),
                    "images_on_hottest": hottest["images"],
                    "even": even,
                    "share": share,
                    "wu_per_upload": wu,
                    "ru_per_upload": ru,
                    "uploads_per_s": min(limits) if limits else None,
                }
            )
        if single:
            busiest = max(single, key=lambda r: r["wu"])
            found.append(
                {
                    "target": name,
                    "scope": "one per image",
                    "key": busiest["key"],
                    "values": len(single),
                    "images_on_hottest": 1,
                    "even": True,
                    "share": None,
                    "wu_per_upload": busiest["wu"],
                    "ru_per_upload": busiest["ru"],
                    "uploads_per_s": None,
                }
            )
    return found


def _without_key_ids(value: str, api_key_ids: Sequence[str]) -> str:
    """A key value as reports show it: the app's API key id (new with every stack) named."""
    for key_id in api_key_ids:
        if key_id:
            value = value.replace(key_id, "{API key id}")
    return value


def _s3(usage: Mapping[str, Any], images: int, deployment: Mapping[str, Any]) -> dict[str, Any]:
    """Per bucket: requests per image by class and caller role, bytes stored per image, and
    whether the keys written spread over prefixes."""
    buckets: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"put": 0.0, "get": 0.0, "free": 0.0, "writes_incl_delete": 0.0}
    )
    for row in usage["s3"]["requests"]:
        if role(row["caller"], "s3", row["operation"], set()) != PIPELINE:
            continue
        entry = buckets[row["bucket"] or "(none)"]
        entry[row["class"]] += row["count"] / images
        if row["class"] == "put" and not row["operation"].startswith(("List", "Get")):
            entry["writes_incl_delete"] += row["count"] / images
        if row["class"] == "free":
            entry["writes_incl_delete"] += row["count"] / images
    for row in usage["s3"]["stored"]:
        if row["measure"] == "bytes":
            buckets[row["bucket"]]["bytes_stored"] = (
                buckets[row["bucket"]].get("bytes_stored", 0) + row["value"] / images
            )
    for bucket, keys in usage["s3"]["keys"].items():
        if keys:
            buckets[bucket]["keys"] = spread(keys)
    renditions = deployment.get("buckets", {}).get("renditions")
    return {
        "buckets": {k: dict(v) for k, v in sorted(buckets.items())},
        "renditions_bucket": renditions,
        "renditions_bytes_per_image": buckets[renditions].get("bytes_stored", 0.0)
        if renditions
        else 0.0,
    }


def spread(keys: Sequence[str]) -> dict[str, Any]:
    """The common prefix of the keys written, and how many different characters follow it:
    more than one, and S3 can partition the bucket there (its per-prefix rates apply to each
    partition)."""
    prefix = _common_prefix(keys)
    following = {k[len(prefix)] for k in keys if len(k) > len(prefix)}
    return {
        "written": len(keys),
        "common_prefix": prefix,
        "next_characters": len(following),
        "spread": len(following) > 1,
    }


def _common_prefix(keys: Sequence[str]) -> str:
    if not keys:
        return ""
    low, high = min(keys), max(keys)
    length = 0
    while length < min(len(low), len(high)) and low[length] == high[length]:
        length += 1
    return low[:length]


def _logs(
    logs: Mapping[str, Mapping[str, int]], lam: Mapping[str, Any], images: int, price: Any
) -> dict[str, Any]:
    """CloudWatch Logs bytes per image per function: what it wrote, plus Lambda's platform
    lines (START/END/REPORT: an estimate per invocation, from the prices file)."""
    platform = price("lambda.platform_log_bytes").value
    found = {}
    for name, data in sorted(lam.items()):
        if data["scheduled"]:
            continue
        own = logs.get(name, {}).get("bytes", 0) / images
        found[name] = {
            "function_bytes": own,
            "platform_bytes": platform * data["invocations_per_image"],
            "bytes": own + platform * data["invocations_per_image"],
        }
    return found


def _ceilings(
    report: Mapping[str, Any], measurement: Mapping[str, Any], price: Any
) -> dict[str, Any]:
    """Every limit as uploads per second, and the ceilings: (a) AWS quotas at their defaults
    and the deployment's settings; (b) every adjustable quota and setting raised: design keys
    and hard AWS limits only. Each per deployment and per app."""
    production = measurement["production"]
    settings = "production plan" if "plan" in str(production.get("source")) else "local settings"
    rows = [
        *_dynamodb_limits(report, price),
        *_lambda_limits(report, production, settings, price),
        *_api_limits(report, production, settings, price),
        *_messaging_limits(report, price),
        *_s3_limits(report, price),
    ]
    result: dict[str, Any] = {"rows": [r.as_dict() for r in rows]}
    result["a"] = {
        PER_DEPLOYMENT: _lowest(r for r in rows if r.binding and r.scope == PER_DEPLOYMENT),
        PER_APP: _lowest(r for r in rows if r.binding),
    }
    raised = [
        Row(
            r.limit,
            r.kind,
            r.value,
            r.raised_value if r.raised_value is not None else r.uploads_per_s,
            r.source,
            r.scope,
            r.note,
        )
        for r in rows
        if r.binding and r.kind in (DESIGN, HARD)
    ]
    result["b"] = {
        PER_DEPLOYMENT: _lowest(r for r in raised if r.scope == PER_DEPLOYMENT),
        PER_APP: _lowest(raised),
    }
    result["ramp"] = _ramp(
        report["lambda"], result["a"][PER_DEPLOYMENT].get("uploads_per_s"), price
    )
    result["stream"] = _stream(report, measurement)
    return result


def _dynamodb_limits(report: Mapping[str, Any], price: Any) -> list[Row]:
    """Partition key values (design) and the on-demand table quotas."""
    rows = []
    partition = price("dynamodb.partition_write_units")
    for hot in report["hot_keys"]:
        if hot["scope"] == "one per image" or hot["uploads_per_s"] is None:
            continue
        rows.append(
            Row(
                f"DynamoDB partition: {hot['target']} = {_short(hot['key'])}",
                DESIGN,
                partition.value,
                hot["uploads_per_s"],
                partition.source,
                scope=hot["scope"],
                note=f"{hot['wu_per_upload']:.2f} WU + {hot['ru_per_upload']:.2f} RU per upload"
                f" on the hottest of {hot['values']} value(s)"
                + (", spread evenly" if hot["even"] and hot["values"] > 1 else ""),
            )
        )
    for table, data in report["dynamodb"]["per_table"].items():
        for units, name, unit in (
            ("wu", "table_write_quota", "WU"),
            ("ru", "table_read_quota", "RU"),
        ):
            if not data[units]:
                continue
            quota = price(f"dynamodb.{name}")
            rows.append(
                Row(
                    f"DynamoDB table {'write' if units == 'wu' else 'read'} quota: {table}"
                    " (+ its indexes)",
                    QUOTA,
                    quota.value,
                    ceiling(quota.value, data[units]),
                    quota.source,
                    note=f"{data[units]:.2f} {unit} per upload",
                )
            )
    return rows


def _lambda_limits(
    report: Mapping[str, Any], production: Mapping[str, Any], settings: str, price: Any
) -> list[Row]:
    """Account concurrency, reserved concurrency, SQS mappings (their maximum concurrency and
    standard mode's 1,250)."""
    lam = report["lambda"]
    busy = {
        name: f["invocations_per_image"] * f["mean_duration_s"]
        for name, f in lam.items()
        if not f["scheduled"]
    }
    concurrency = price("lambda.concurrency")
    rows = [
        Row(
            "Lambda concurrent executions (account, region)",
            QUOTA,
            concurrency.value,
            ceiling(concurrency.value, sum(busy.values())),
            concurrency.source,
            note=f"{sum(busy.values()):.3f} s of execution per upload, all functions",
        )
    ]
    for name, function in sorted(production.get("functions", {}).items()):
        reserved = function.get("reserved")
        if reserved is not None and reserved >= 0 and name in busy:
            rows.append(
                Row(
                    f"reserved concurrency: {name}",
                    SETTING,
                    reserved,
                    ceiling(reserved, busy[name]),
                    settings,
                    note=f"{busy[name]:.3f} s per upload",
                )
            )
    standard = price("lambda.sqs_standard_concurrency")
    factor = price("lambda.sqs_provisioned_factor").value
    for mapping in production.get("mappings", []):
        function = mapping.get("function")
        if mapping.get("kind") != "sqs" or function not in lam:
            continue
        f = lam[function]
        invocations = f["by_source"].get("aws:sqs", 0) / report["images"]
        per_upload = invocations * f["mean_duration_s"]
        if mapping.get("maximum_concurrency"):
            rows.append(
                Row(
                    f"SQS mapping maximum concurrency: {function}",
                    SETTING,
                    mapping["maximum_concurrency"],
                    ceiling(mapping["maximum_concurrency"], per_upload),
                    settings,
                    note=f"{invocations:.2f} invocations x {f['mean_duration_s']:.3f} s per upload;"
                    f" batch size {mapping.get('batch_size')}",
                )
            )
        provisioned = mapping.get("provisioned_pollers")
        rows.append(
            Row(
                f"Lambda SQS polling, standard mode: {function}",
                HARD,
                standard.value,
                ceiling(standard.value, per_upload),
                standard.source,
                note="1,250 concurrent invocations per mapping; provisioned pollers lift it up to"
                " 16x (a setting)"
                + (f"; this mapping has provisioned pollers {provisioned}" if provisioned else ""),
                raised_value=ceiling(standard.value * factor, per_upload),
            )
        )
    return rows


def _api_limits(
    report: Mapping[str, Any], production: Mapping[str, Any], settings: str, price: Any
) -> list[Row]:
    """The account's API Gateway rate; the usage plan's throttle and quota (per API key)."""
    per_upload = sum(
        r["without_polling"] for r in report["requests"]["rows"] if r["service"] == "execute-api"
    )
    account = price("apigateway.account_rate")
    rows = [
        Row(
            "API Gateway requests (account, region)",
            QUOTA,
            account.value,
            ceiling(account.value, per_upload),
            account.source,
            note=f"{per_upload:.2f} API requests per upload (polling excluded)",
        )
    ]
    for plan in production.get("usage_plans", []):
        if plan.get("rate"):
            rows.append(
                Row(
                    "API usage plan throttle rate (per API key)",
                    SETTING,
                    plan["rate"],
                    ceiling(plan["rate"], per_upload),
                    settings,
                    scope=PER_APP,
                    note=f"burst {plan.get('burst')}",
                )
            )
        period = {"DAY": 86400, "WEEK": 7 * 86400, "MONTH": SECONDS_PER_MONTH}.get(
            str(plan.get("quota_period")), 0
        )
        if plan.get("quota_limit") and period:
            uploads = plan["quota_limit"] / per_upload if per_upload else None
            rows.append(
                Row(
                    f"API usage plan quota: {plan['quota_limit']:,} requests a"
                    f" {str(plan['quota_period']).lower()} (per API key)",
                    SETTING,
                    plan["quota_limit"],
                    ceiling(plan["quota_limit"] / period, per_upload),
                    settings,
                    scope=PER_APP,
                    note=f"a volume, not a rate: {number(uploads)} uploads a"
                    f" {str(plan['quota_period']).lower()} per app (the uploads/s shown is its"
                    " average over the period)",
                    binding=False,
                )
            )
    return rows


def _messaging_limits(report: Mapping[str, Any], price: Any) -> list[Row]:
    """EventBridge's target invocations and SNS's Publish rate."""
    targets = report["requests"]["events"]["targets_per_image"]
    invocations = price("eventbridge.target_invocations")
    # Messages, not requests: a PublishBatch request carries up to ten (the quota counts the
    # messages; a batch of ten is billed as one request while it stays within 64 KB).
    publishes = report.get("notifications_per_image") or sum(
        r["pipeline"]
        for r in report["requests"]["rows"]
        if (r["service"], r["operation"]) in SNS_PUBLISHES
    )
    publish = price("sns.publish_quota")
    return [
        Row(
            "EventBridge target invocations",
            QUOTA,
            invocations.value,
            ceiling(invocations.value, targets),
            invocations.source,
            note=f"{targets:.2f} per upload; above it deliveries are delayed, not dropped",
        ),
        Row(
            "SNS Publish" + ("" if publish.confirmed else " (UNCONFIRMED quota)"),
            QUOTA,
            publish.value,
            ceiling(publish.value, publishes),
            publish.source,
            note=f"{publishes:.2f} messages per upload",
        ),
    ]


def _s3_limits(report: Mapping[str, Any], price: Any) -> list[Row]:
    """Per bucket, S3's request rates per prefix; not binding where the keys spread."""
    rows = []
    for bucket, data in report["s3"]["buckets"].items():
        keys = data.get("keys") or {}
        spreads = bool(keys.get("spread"))
        for limit, per_upload, entry in (
            ("PUT/COPY/POST/DELETE", data.get("writes_incl_delete", 0.0), "s3.prefix_writes"),
            ("GET/HEAD", data.get("get", 0.0), "s3.prefix_reads"),
        ):
            if not per_upload:
                continue
            quota = price(entry)
            where = f"{keys.get('next_characters')} characters after {keys.get('common_prefix')!r}"
            rows.append(
                Row(
                    f"S3 {limit} per prefix: {bucket}",
                    HARD,
                    quota.value,
                    ceiling(quota.value, per_upload),
                    quota.source,
                    note=f"{per_upload:.2f} per upload; "
                    + (
                        f"keys spread ({where}): S3 partitions further, not a ceiling"
                        if spreads
                        else "keys do not spread: one prefix"
                    ),
                    binding=not spreads,
                )
            )
    return rows


def _lowest(rows: Iterable[Row]) -> dict[str, Any]:
    candidates = [r for r in rows if r.uploads_per_s is not None]
    if not candidates:
        return {}
    row = min(candidates, key=lambda r: r.uploads_per_s or math.inf)
    return {"uploads_per_s": row.uploads_per_s, "limit": row.limit, "kind": row.kind}


def _ramp(lam: Mapping[str, Any], rate: float | None, price: Any) -> list[dict[str, Any]]:
    """How long Lambda's scaling (1,000 environments per 10 s per function) takes to reach the
    concurrency each function needs at ``rate`` uploads per second."""
    scaling = price("lambda.scaling_rate")
    found = []
    for name, f in lam.items():
        if f["scheduled"] or not rate:
            continue
        needed = rate * f["invocations_per_image"] * f["mean_duration_s"]
        found.append(
            {
                "function": name,
                "concurrency": needed,
                "ramp_s": needed / scaling.value * scaling.per,
            }
        )
    return found


def _stream(report: Mapping[str, Any], measurement: Mapping[str, Any]) -> list[dict[str, Any]]:
    """For each stream mapping: does its function keep up with a shard carrying 1,000 write
    units per second (a partition's most)? Records per second it can take per shard against
    the records such a shard carries (1,000 x stream records per write unit of the table).
    Such a shard has records waiting at every read, so its batches are full (the production
    batch size): their duration is the run's fit of duration against records (``duration_fit``).
    The pace at the run's own, smaller batches is given too."""
    found = []
    lam = report["lambda"]
    for mapping in measurement["production"].get("mappings", []):
        if mapping.get("kind") != "stream" or mapping.get("function") not in lam:
            continue
        f = lam[mapping["function"]]
        table = mapping.get("table")
        table_wu = report["dynamodb"]["wu_per_image"].get(table or "", 0.0)
        stream_invocations = f["by_source"].get("aws:dynamodb", 0)
        records = f["records_per_invocation"] * stream_invocations / report["images"]
        factor = mapping.get("parallelization_factor") or 1
        batch = f["records_per_invocation"]
        full = mapping.get("batch_size") or batch
        full_s = f.get("fixed_s", 0.0) + f.get("per_record_s", 0.0) * full
        if not full_s:  # no fit (no invocation with records): as measured
            full, full_s = batch, f["mean_duration_s"]
        capacity = factor * full / full_s if full_s else None
        measured = factor * batch / f["mean_duration_s"] if f["mean_duration_s"] else None
        needed = 1000 * records / table_wu if table_wu else None
        pace = full / full_s if full_s else None
        found.append(
            {
                "function": mapping["function"],
                "table": table,
                "factor_needed": math.ceil(needed / pace) if needed and pace else None,
                "parallelization_factor": factor,
                "batch_size": mapping.get("batch_size"),
                "records_per_batch": batch,
                "mean_batch_s": f["mean_duration_s"],
                "full_batch": full,
                "full_batch_s": full_s,
                "capacity_as_measured_records_per_s": measured,
                "records_per_image": records,
                "table_wu_per_image": table_wu,
                "capacity_records_per_s": capacity,
                "needed_records_per_s": needed,
                "keeps_up": capacity is not None and needed is not None and capacity >= needed,
                "margin": capacity / needed if capacity and needed else None,
            }
        )
    return found


def _cost(report: Mapping[str, Any], measurement: Mapping[str, Any], price: Any) -> dict[str, Any]:
    """USD per million images, every line priced from the prices file."""
    million = 1_000_000
    lines: list[dict[str, Any]] = []

    def line(service: str, item: str, quantity: float, entry: str, unit: str) -> None:
        p = price(entry)
        per = {1: "", 1000: "1,000 ", million: "1M "}.get(int(p.per), f"{p.per:,.0f} ")
        what = {"requests": "request", "events": "event"}.get(unit, unit) if p.per == 1 else unit
        lines.append(
            {
                "service": service,
                "item": item,
                "per_image": quantity,
                "unit": unit,
                "price": p.value,
                "price_text": f"{_plain(p.value)} per {per}{what}",
                "usd_per_million": quantity * p.rate * million,
                "unconfirmed": not p.confirmed,
            }
        )

    for name, f in report["lambda"].items():
        if f["scheduled"]:
            continue
        rate = f"lambda.gb_second_{'arm64' if f['architecture'] == 'arm64' else 'x86_64'}"
        line(
            "Lambda",
            f"{name}: {f['memory_mb']} MB {f['architecture']}",
            f["gb_s_per_image"],
            rate,
            "GB-s",
        )
        line(
            "Lambda", f"{name}: requests", f["invocations_per_image"], "lambda.request", "requests"
        )
    for bucket, data in report["s3"]["buckets"].items():
        if data.get("put"):
            line("S3", f"{bucket}: PUT/COPY/POST/LIST", data["put"], "s3.put_class", "requests")
        if data.get("get"):
            line("S3", f"{bucket}: GET/HEAD/other", data["get"], "s3.get_class", "requests")
        if data.get("free"):
            line("S3", f"{bucket}: DELETE", data["free"], "s3.delete", "requests")
    dynamodb = report["dynamodb"]
    line(
        "DynamoDB",
        "write request units (tables + indexes)",
        dynamodb["total_wu_per_image"],
        "dynamodb.write_request_unit",
        "WRU",
    )
    line(
        "DynamoDB",
        "read request units",
        dynamodb["total_ru_per_image"],
        "dynamodb.read_request_unit",
        "RRU",
    )
    rows = {(r["service"], r["operation"]): r for r in report["requests"]["rows"]}
    stream_reads = sum(r["pipeline"] for (s, _), r in rows.items() if s == "dynamodbstreams")
    if stream_reads:
        line(
            "DynamoDB",
            "stream reads by the Lambda trigger",
            stream_reads,
            "dynamodb.stream_read_by_lambda",
            "requests",
        )
    sqs = sum(r["pipeline"] for (s, o), r in rows.items() if s == "sqs" and "EventBridge" not in o)
    line("SQS", "requests (functions, Lambda's polling)", sqs, "sqs.request", "requests")
    delivered = report["requests"]["events"]["sqs_targets_per_image"]
    if delivered:
        line("SQS", "SendMessage by EventBridge", delivered, "sqs.eventbridge_delivery", "requests")
    publishes = sum(r["pipeline"] for (s, o), r in rows.items() if (s, o) in SNS_PUBLISHES)
    line("SNS", "Publish and PublishBatch", publishes, "sns.publish", "requests")
    line(
        "EventBridge",
        "S3 events matched",
        report["requests"]["events"]["matched_per_image"],
        "eventbridge.s3_event",
        "events",
    )
    api = sum(r["pipeline"] for (s, _), r in rows.items() if s == "execute-api")
    line("API Gateway", "REST requests (POST /uploads)", api, "apigateway.request", "requests")
    log_bytes = sum(v["bytes"] for v in report["logs"].values())
    line("CloudWatch Logs", "ingestion", log_bytes / GIB, "cloudwatch_logs.ingestion", "GB")
    line(
        "S3",
        "renditions stored, one month",
        report["s3"]["renditions_bytes_per_image"] / GIB,
        "s3.storage",
        "GB-month",
    )
    stored = sum(
        v.get("bytes", 0) for v in dynamodb["storage_per_image"].values() if v.get("bytes", 0) > 0
    )
    line(
        "DynamoDB",
        "items and index entries stored, one month",
        stored / GIB,
        "dynamodb.storage",
        "GB-month",
    )

    by_service: dict[str, float] = defaultdict(float)
    for entry in lines:
        by_service[entry["service"]] += entry["usd_per_million"]
    total = sum(by_service.values())
    subscriber = sum(r["subscriber"] for r in report["requests"]["rows"] if r["service"] == "sqs")
    app_rate = price("sqs.request").rate
    return {
        "lines": lines,
        "by_service": {
            k: {"usd_per_million": v, "share": v / total if total else 0.0}
            for k, v in sorted(by_service.items(), key=lambda kv: -kv[1])
        },
        "total_usd_per_million": total,
        "subscriber_usd_per_million": subscriber * app_rate * million,
        "fixed_monthly": _fixed_monthly(report, price),
    }


SERVING_MISS_RATIO = 0.05
"""Share of CDN views that go to the origin (S3 GET): an assumption, not a measurement (objects
are immutable and cached a year, so misses are each edge's first view and evictions)."""


def serving(s3: Mapping[str, Any], price: Any) -> dict[str, Any] | None:
    """What a million views of a rendition cost, at the mean rendition size of the run: through
    the CDN (HTTPS requests, transfer out, origin GETs at ``SERVING_MISS_RATIO``) and as S3
    presigned GETs (GET requests, S3's transfer out). Free tiers left out. None when the run
    wrote no rendition."""
    bucket = s3["buckets"].get(s3.get("renditions_bucket") or "", {})
    objects, stored = bucket.get("put", 0.0), bucket.get("bytes_stored", 0.0)
    if not objects or not stored:
        return None
    views = 1_000_000
    gb = views * stored / objects / GIB
    cdn = {
        "requests": views * price("cloudfront.https_request").rate,
        "transfer": gb * price("cloudfront.transfer_out").rate,
        "origin_gets": views * SERVING_MISS_RATIO * price("s3.get_class").rate,
    }
    direct = {
        "requests": views * price("s3.get_class").rate,
        "transfer": gb * price("s3.transfer_out").rate,
    }
    return {
        "mean_rendition_bytes": stored / objects,
        "gb_per_million_views": gb,
        "miss_ratio": SERVING_MISS_RATIO,
        "cdn": {**cdn, "total": sum(cdn.values())},
        "s3_presigned": {**direct, "total": sum(direct.values())},
    }


def _fixed_monthly(report: Mapping[str, Any], price: Any) -> list[dict[str, Any]]:
    """Scheduled functions: a cost per month at their production schedule, not per image
    (Lambda only: the requests each run makes are listed, not priced). A scheduled function
    that did not run in the window is listed without a cost."""
    fixed = [
        {
            "function": name,
            "schedule": schedule,
            "runs_measured": 0,
            "runs_per_month": _runs_per_month(schedule),
            "billed_ms_per_run": None,
            "usd_per_month": None,
            "requests_per_run": {},
        }
        for name, schedule in sorted(report.get("schedules", {}).items())
        if name not in report["lambda"]
    ]
    for name, f in report["lambda"].items():
        if not f["scheduled"]:
            continue
        runs = _runs_per_month(f.get("schedule"))
        rate = price(f"lambda.gb_second_{'arm64' if f['architecture'] == 'arm64' else 'x86_64'}")
        per_run = f["billed_ms_per_run"] / 1000 * f["memory_mb"] / 1024 * rate.rate
        fixed.append(
            {
                "function": name,
                "schedule": f.get("schedule"),
                "runs_measured": f["scheduled_runs"],
                "runs_per_month": runs,
                "billed_ms_per_run": f["billed_ms_per_run"],
                "usd_per_month": (per_run + price("lambda.request").rate) * runs
                if runs and f["scheduled_runs"]
                else None,
                "requests_per_run": {
                    k: v / max(f["scheduled_runs"], 1)
                    for k, v in report["requests"]["scheduled_per_run"].items()
                },
            }
        )
    return fixed


def _plain(value: float) -> str:
    """A price as written on a price list: 0.0000133334, 0.625, 3.5."""
    return f"{value:.10f}".rstrip("0").rstrip(".") or "0"


def _runs_per_month(expression: str | None) -> float | None:
    """Runs a month of an EventBridge ``rate(N unit)`` schedule (None for cron or none)."""
    if not expression or not expression.startswith("rate("):
        return None
    amount, unit = expression[5:-1].split()
    seconds = {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
    return SECONDS_PER_MONTH / (int(amount) * seconds)


def _notes(report: Mapping[str, Any], measurement: Mapping[str, Any]) -> list[str]:
    notes = [
        "Durations are the embedded stack's: the host's CPU (2 shared cores here, not Graviton),"
        " an emulator in the same machine, batches as they formed: conservative.",
        "Lambda's SQS and stream batching as measured on the local stack's settings"
        " (terraform/envs/local.tfvars); production batch sizes differ.",
    ]
    idle = report["requests"]["per_image"]["idle"]
    if idle:
        notes.append(
            f"{idle:.2f} empty ReceiveMessage per image by the local pollers are left out of the"
            " per-image requests and cost: Lambda's pollers receive whether or not images come,"
            " so their cost depends on time (and on AWS's poller count), not on images."
        )
    unmodelled = report["dynamodb"]["unmodelled"]
    if unmodelled:
        notes.append(f"DynamoDB requests whose capacity is not modelled (PartiQL): {unmodelled}")
    if report["dynamodb"]["dropped"]:
        notes.append(f"per-key counts overflowed: {report['dynamodb']['dropped']}")
    excluded = report["requests"]["excluded"]
    if excluded:
        notes.append(f"requests left out (deployment, probes, the emulator's own): {excluded}")
    return notes


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    return str(value).replace("|", "\\|")


def number(value: float | None, digits: int = 3) -> str:
    """A figure with ``digits`` significant digits, thousands separated."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    return f"{value:,.{max(decimals, 0)}f}"


def format_report(report: Mapping[str, Any]) -> str:
    """The report as markdown tables."""
    out = [f"## Capacity and cost: {report['label']}", ""]
    outcomes = report["outcomes"]
    out.append(
        f"{outcomes['uploaded']} uploads, {report['images']} notified ({outcomes.get('ready', 0)}"
        f" READY, {outcomes.get('failed', 0)} FAILED) in {number(report.get('window_s'))} s."
        f" Extra formats: {', '.join(report.get('extra_formats') or []) or 'none'}."
        f" Production settings: {report['production_source']}."
        f" Prices: {report['prices']['file']}, researched {report['prices']['researched']}"
        f" ({report['prices']['region']})."
    )
    unconfirmed = report["prices"]["unconfirmed"]
    if unconfirmed:
        out.append(f"UNCONFIRMED figures used (flagged *): {', '.join(unconfirmed)}.")
    out += ["", "### Requests per image", ""]
    out.append(
        table(
            [
                "service",
                "operation",
                "all",
                "without API polling",
                "without polling and the subscriber",
                "note",
            ],
            [
                (
                    r["service"],
                    r["operation"],
                    r["all"],
                    r["without_polling"],
                    r["pipeline"],
                    r["note"],
                )
                for r in report["requests"]["rows"]
            ],
        )
    )
    per = report["requests"]["per_image"]
    out.append("")
    out.append(
        f"Total per image: {number(per['all'])} (all), {number(per['without_polling'])} (without"
        f" API polling), {number(per['pipeline'])} (also without the subscriber's"
        f" {number(per['subscriber'])}: the app draining its events queue, its own cost)."
    )
    out.append("")
    out.append(
        f"**AWS API calls per image: {number(per['api_calls'])}**: the pipeline's calls of AWS"
        " service APIs (its functions', Lambda's pollers' receives and deletes, EventBridge's"
        " SendMessage, the app's POST /uploads), without Lambda's invocations, the events"
        ' EventBridge matches and the stream reads of the Lambda trigger (rows marked "not an'
        ' HTTP request" or "free" above).'
    )
    dynamodb = report["dynamodb"]
    out += ["", "### DynamoDB per image", ""]
    rows = [
        (k, v, dynamodb["ru_per_image"].get(k, 0.0)) for k, v in dynamodb["wu_per_image"].items()
    ]
    rows += [
        (k, 0.0, v)
        for k, v in dynamodb["ru_per_image"].items()
        if k not in dynamodb["wu_per_image"]
    ]
    rows.append(("**total**", dynamodb["total_wu_per_image"], dynamodb["total_ru_per_image"]))
    out.append(table(["table / index", "write units", "read units"], rows))
    out.append("")
    out.append(
        f"Index writes per image: {_inline(dynamodb['index_writes_per_image'])} (index copies"
        f" written: {number(dynamodb['index_copies_per_image'])}); failed"
        f" conditional writes per image: {number(dynamodb['failed_conditions_per_image'])}."
    )
    for entry in dynamodb["query_scan"]:
        out.append(
            f"{entry['operation']} of {entry['target']} by {entry['caller']}: scanned"
            f" {entry['scanned']}, returned {entry['returned']} (what a filter drops is billed"
            " too)."
        )
    out += ["", "### Hot keys", ""]
    out.append(
        table(
            [
                "table / index",
                "scope",
                "hottest key value",
                "values",
                "images on it",
                "even",
                "WU per upload",
                "RU per upload",
                "uploads/s its partition allows",
            ],
            [
                (
                    h["target"],
                    h["scope"],
                    _short(h["key"]),
                    h["values"],
                    h["images_on_hottest"],
                    h["even"],
                    h["wu_per_upload"],
                    h["ru_per_upload"],
                    h["uploads_per_s"],
                )
                for h in report["hot_keys"]
            ],
        )
    )
    out += ["", "### Lambda per image (production memory)", ""]
    out.append(
        table(
            [
                "function",
                "memory",
                "arch",
                "invocations",
                "billed ms",
                "mean s",
                "records/batch",
                "log bytes",
            ],
            [
                (
                    name,
                    f["memory_mb"],
                    f["architecture"],
                    f["invocations_per_image"],
                    f["billed_ms_per_image"],
                    f["mean_duration_s"],
                    f["records_per_invocation"],
                    report["logs"].get(name, {}).get("bytes"),
                )
                for name, f in report["lambda"].items()
                if not f["scheduled"]
            ],
        )
    )
    out += ["", "### S3 per image", ""]
    out.append(
        table(
            ["bucket", "PUT/COPY/POST/LIST", "GET/HEAD", "DELETE", "bytes stored", "keys spread"],
            [
                (
                    b,
                    d.get("put"),
                    d.get("get"),
                    d.get("free"),
                    d.get("bytes_stored"),
                    _spread_text(d.get("keys")),
                )
                for b, d in report["s3"]["buckets"].items()
            ],
        )
    )
    ceilings = report["ceilings"]
    out += ["", "### Ceilings (uploads per second)", ""]
    out.append(
        table(
            ["limit", "kind", "value", "uploads/s", "scope", "source", "note"],
            [
                (
                    r["limit"],
                    r["kind"],
                    r["value"],
                    r["uploads_per_s"],
                    r["scope"],
                    r["source"],
                    r["note"] + ("" if r["binds"] else " (not binding)"),
                )
                for r in sorted(ceilings["rows"], key=lambda r: r["uploads_per_s"] or math.inf)
            ],
        )
    )
    out.append("")
    for label, key in (
        ("(a) AWS quotas at their defaults, the deployment's settings", "a"),
        ("(b) every adjustable quota and setting raised (design keys, hard limits)", "b"),
    ):
        for scope in (PER_DEPLOYMENT, PER_APP):
            lowest = ceilings[key][scope]
            out.append(
                f"- {label}, {scope}: **{number(lowest.get('uploads_per_s'))} uploads/s**,"
                f" bound by {lowest.get('limit')} ({lowest.get('kind')})"
            )
    for ramp in ceilings["ramp"]:
        out.append(
            f"- Lambda ramp to (a): {ramp['function']} needs {number(ramp['concurrency'])}"
            f" concurrent executions, {number(ramp['ramp_s'])} s of scaling at 1,000 per 10 s"
        )
    for stream in ceilings["stream"]:
        out.append(
            f"- Stream of {stream['table']} -> {stream['function']}: a shard at 1,000 WU/s carries"
            f" {number(stream['needed_records_per_s'])} records/s; the function takes"
            f" {number(stream['capacity_records_per_s'])} (parallelization factor"
            f" {stream['parallelization_factor']}, full batches of"
            f" {number(stream['full_batch'])} records in {number(stream['full_batch_s'])} s, from"
            f" the run's {number(stream['records_per_batch'])} records per batch in"
            f" {number(stream['mean_batch_s'])} s): "
            + ("keeps up" if stream["keeps_up"] else "does NOT keep up")
            + f", margin x{number(stream['margin'])}"
            + (
                ""
                if stream["keeps_up"]
                else f"; a parallelization factor of {stream['factor_needed']} would"
                " (AWS allows 1 to 10)"
            )
        )
    cost = report["cost"]
    out += ["", "### Cost per million images (USD)", ""]
    out.append(
        table(
            ["service", "item", "per image", "unit", "price", "USD per 1M images"],
            [
                (
                    c["service"],
                    c["item"] + (" *" if c["unconfirmed"] else ""),
                    c["per_image"],
                    c["unit"],
                    c["price_text"],
                    c["usd_per_million"],
                )
                for c in cost["lines"]
            ],
        )
    )
    out.append("")
    out.append(
        table(
            ["service", "USD per 1M images", "share"],
            [
                (s, v["usd_per_million"], f"{v['share'] * 100:.1f}%")
                for s, v in cost["by_service"].items()
            ]
            + [("**total**", cost["total_usd_per_million"], "100%")],
        )
    )
    out.append("")
    out.append(
        "The app's own side (draining its events queue):"
        f" {number(cost['subscriber_usd_per_million'])} USD per million images, not in the"
        " total."
    )
    for fixed in cost["fixed_monthly"]:
        if not fixed["runs_measured"]:
            out.append(
                f"Scheduled, not per image: {fixed['function']} ({fixed['schedule']}): it did not"
                " run during the workload; not priced."
            )
            continue
        out.append(
            f"Scheduled, not per image: {fixed['function']} ({fixed['schedule']}):"
            f" {number(fixed['billed_ms_per_run'])} ms per run (measured"
            f" {fixed['runs_measured']}), {number(fixed['usd_per_month'])} USD a month."
        )
    out += _serving_text(report.get("serving"))
    out += ["", "Notes:", *(f"- {n}" for n in report["notes"])] if report["notes"] else []
    return "\n".join(out)


def _serving_text(views: Mapping[str, Any] | None) -> list[str]:
    if not views:
        return []
    out: list[str] = []
    out += ["", "### Serving: per million views of a rendition (USD)", ""]
    out.append(
        table(
            ["way", "requests", "transfer out", "origin GETs", "total"],
            [
                (
                    "CDN (CloudFront)",
                    *(views["cdn"][k] for k in ("requests", "transfer")),
                    views["cdn"]["origin_gets"],
                    views["cdn"]["total"],
                ),
                (
                    "S3 presigned GETs",
                    *(views["s3_presigned"][k] for k in ("requests", "transfer")),
                    "-",
                    views["s3_presigned"]["total"],
                ),
            ],
        )
    )
    out.append("")
    out.append(
        f"At the run's mean rendition, {number(views['mean_rendition_bytes'])} bytes"
        f" ({number(views['gb_per_million_views'])} GB per million views); origin GETs at an"
        f" assumed {views['miss_ratio'] * 100:.0f}% miss ratio; free tiers (CloudFront: 1 TB"
        " and 10 million requests a month; S3: 100 GB a month) left out. What the CDN saves"
        " is mostly repeat views: its URLs are the same for a window, so browsers cache"
        " them, where each GET /images hands out new presigned URLs (docs/operations.md)."
    )
    return out


def _inline(values: Mapping[str, Mapping[str, float]]) -> str:
    return (
        "; ".join(
            f"{name} " + ", ".join(f"{kind} {number(v)}" for kind, v in sorted(kinds.items()))
            for name, kinds in values.items()
        )
        or "none"
    )


def _spread_text(keys: Mapping[str, Any] | None) -> str:
    if not keys:
        return "-"
    verdict = "yes" if keys["spread"] else "no"
    return f"{verdict} ({keys['next_characters']} after {keys['common_prefix']!r})"


# ---------------------------------------------------------------------------------------------
# Before and after
# ---------------------------------------------------------------------------------------------


def headline(report: Mapping[str, Any]) -> dict[str, float | str | None]:
    """The figures compared side by side with BASE."""
    figures: dict[str, float | str | None] = {
        "WU per image, total": report["dynamodb"]["total_wu_per_image"],
    }
    for name, value in report["dynamodb"]["wu_per_image"].items():
        figures[f"WU per image: {name}"] = value
    figures["RU per image, total"] = report["dynamodb"]["total_ru_per_image"]
    figures["requests per image (without API polling)"] = report["requests"]["per_image"][
        "without_polling"
    ]
    figures["requests per image (pipeline)"] = report["requests"]["per_image"]["pipeline"]
    figures["AWS API calls per image"] = report["requests"]["per_image"].get("api_calls")
    shared = [h for h in report["hot_keys"] if h["uploads_per_s"] is not None]
    if shared:
        hottest = min(shared, key=lambda h: h["uploads_per_s"])
        figures["hottest key"] = (
            f"{hottest['target']} = {_short(hottest['key'], 24)} ({hottest['scope']})"
        )
        figures["hottest key: WU per upload"] = hottest["wu_per_upload"]
    for key, label in (("a", "(a)"), ("b", "(b)")):
        for scope in (PER_DEPLOYMENT, PER_APP):
            lowest = report["ceilings"][key][scope]
            figures[f"ceiling {label} {scope}, uploads/s"] = lowest.get("uploads_per_s")
            figures[f"ceiling {label} {scope}: bound by"] = lowest.get("limit")
    for service, value in report["cost"]["by_service"].items():
        figures[f"USD per 1M images: {service}"] = value["usd_per_million"]
    figures["USD per 1M images: total"] = report["cost"]["total_usd_per_million"]
    return figures


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """The headline figures of two reports side by side, with after / before."""
    old, new = headline(before), headline(after)
    rows = []
    for name in list(old) + [n for n in new if n not in old]:
        a, b = old.get(name), new.get(name)
        ratio = None
        if isinstance(a, int | float) and isinstance(b, int | float) and a:
            ratio = b / a
        rows.append(
            (
                name,
                a,
                b,
                "-" if ratio is None else f"x{number(ratio)}",
            )
        )
    return table(["figure", str(before["label"]), str(after["label"]), "after / before"], rows)
