#!/usr/bin/env python3
"""make capacity: what an image costs and how many uploads per second the design allows,
computed from a real run of any git ref.

    python scripts/capacity.py [--n 100]                 # the working tree
    python scripts/capacity.py --ref 99ba2a0 [--n 100]   # a git ref
    python scripts/capacity.py --base main [--n 100]     # a ref and the working tree, side by side

For each tree measured (a ref: ``git worktree add --detach .local/capacity/<sha>/src``):

1. Builds its Lambda packages with its own Makefile (``make build``, with this checkout's
   virtualenv and the tree's own scripts first on the path).
2. Starts an embedded stack from THIS checkout's devstack (the measuring machinery is the same
   for every ref), state in ``.local/capacity/<name>/stack``, on port --port (default the
   stack's port + 50), and applies the tree's own emulator root (``terraform/envs/local`` with
   ``terraform/envs/local.tfvars``, but ``extra_formats`` as --extra-formats says: none by
   default, as the module's default; and no ``cropped_renditions``, the module's default) with
   the tree's packages.
3. Reads what is deployed from the emulator's APIs and the Terraform outputs (tables, indexes,
   functions, mappings, the API key's id), then runs the workload: N uploads (--n) of a fixed
   mix of real photos (scripts/load.py's planner: JPEG, PNG, WebP and HEIF from
   ../shared/corpus and samples/, about 5% corrupt), every one through the upload API (POST
   /uploads with the stack's API key, then the presigned POST), --concurrency (4) at a time;
   drains the app events queue until every image has its notification (bounded by --timeout),
   then waits for a quiet period. It never polls GET /images. The usage the stack counts
   (``GET /_devstack/usage``), the invocation journal and the functions' log files are read
   before and after; the model uses the difference.
4. Stops the stack (unless --keep), plans the tree's production root (``terraform/envs/aws``
   with ``terraform/envs/prod.tfvars.example``, against a throwaway moto server, as make
   plan-check does) for the production settings (memory, timeouts, concurrency, batch sizes,
   usage plan, architecture), and models the run (tooling/capacity.py) with the prices of
   docs/aws-prices.toml.

Prints markdown tables and writes the whole report to .local/capacity/<name>/report.json; with
--base, the headline figures side by side (after / before). What each figure means:
docs/operations.md, "Capacity".
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import load
from botocore.config import Config
from devstack import stack
from tooling import capacity, plan_check, terraform
from tooling.api_client import UploadClient, content_type_of

ROOT = Path(__file__).resolve().parents[1]
PLACE = ROOT / ".local" / "capacity"
CONCURRENCY = 4
QUIET_SECONDS = 5.0  # no invocation for this long: the pipeline has settled
QUIET_BOUND = 60.0
PLATFORM_LINE = re.compile(rb"^(START|END|REPORT) RequestId: ")


def default_timeout(n: int) -> float:
    """Seconds to wait for the notifications: the local stack's retry horizon with room to
    spare, plus two seconds an image (a busy 2-core machine)."""
    return 180.0 + 2.0 * n


# ---------------------------------------------------------------------------------------------
# Which tree, and its packages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    label: str
    name: str  # the directory under .local/capacity
    tree: Path  # the project tree whose product is measured
    sha: str

    @property
    def place(self) -> Path:
        return PLACE / self.name


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def ref_target(ref: str) -> Target:
    """A git ref, checked out (detached) in a worktree of its own, reused when present."""
    try:
        sha = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"capacity: no such git ref: {ref} ({error.stderr.strip()})") from None
    short = sha[:7]
    source = PLACE / short / "src"
    if not (source / ".git").exists():
        source.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--detach", str(source), sha)
    elif git("rev-parse", "HEAD", cwd=source) != sha:
        git("checkout", "--detach", sha, cwd=source)
    return Target(f"{ref} ({short})", short, source, sha)


def working_tree() -> Target:
    sha = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    short = sha[:7]
    label = f"working tree ({short}{', with changes' if dirty else ''})"
    return Target(label, f"{short}-worktree", ROOT, sha)


def build(target: Target) -> None:
    """The tree's packages, by the tree's own Makefile (this checkout's virtualenv; the
    tree's scripts and Lambda code first on the path)."""
    venv = ROOT / ".venv"
    command = ["make", "--no-print-directory", "-C", str(target.tree), "build"]
    if target.tree != ROOT:
        # The tree's `install` would re-create the virtualenv with the tree's editable install:
        # it is taken as done (-o), the packages are built with this checkout's interpreter.
        command += [f"PY={venv / 'bin' / 'python'}", f"VENV={venv}", "-o", f"{venv}/.installed"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target.tree / "scripts"), str(target.tree / "lambdas")]),
    }
    print(f"==> building the packages of {target.label}", flush=True)
    built = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        tail = "\n".join((built.stdout + built.stderr).splitlines()[-30:])
        raise SystemExit(f"capacity: the build of {target.label} failed:\n{tail}")


# ---------------------------------------------------------------------------------------------
# What is deployed (read as the tool's probe: its requests are not the workload's)
# ---------------------------------------------------------------------------------------------


def clients(running: stack.Stack, region: str, app_id: str, *names: str) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the emulator's fixed credentials
        region_name=region,
    )
    config = Config(retries={"mode": "standard"}, user_agent_appid=app_id)
    return {
        name: session.client(
            name, endpoint_url=running.endpoint, config=config, verify=str(running.ca_bundle)
        )
        for name in names
    }


def deployed(running: stack.Stack, outputs: dict[str, Any]) -> dict[str, Any]:
    """Tables, functions, mappings and the API keys' ids, from the emulator's own APIs; the
    buckets and the app events queue from the outputs."""
    probe = clients(running, outputs["region"], capacity.PROBE, "dynamodb", "lambda", "apigateway")
    tables = {}
    for page in probe["dynamodb"].get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            description = probe["dynamodb"].describe_table(TableName=name)["Table"]
            tables[name] = description.get("StreamSpecification", {}).get("StreamEnabled", False)
    functions = {
        f["FunctionName"]: {
            "memory": f.get("MemorySize"),
            "timeout": f.get("Timeout"),
            "architecture": (f.get("Architectures") or ["x86_64"])[0],
        }
        for page in probe["lambda"].get_paginator("list_functions").paginate()
        for f in page["Functions"]
    }
    mappings = []
    for page in probe["lambda"].get_paginator("list_event_source_mappings").paginate():
        for m in page["EventSourceMappings"]:
            mappings.append(_mapping(m["FunctionArn"], m["EventSourceArn"], m))
    key_ids = [
        k["id"]
        for page in probe["apigateway"].get_paginator("get_api_keys").paginate()
        for k in page["items"]
    ]
    return {
        "tables": tables,
        "functions": functions,
        "mappings": mappings,
        "api_key_ids": key_ids,
        "buckets": {
            "renditions": outputs.get("renditions_bucket"),
            "uploads": outputs.get("uploads_bucket"),
        },
        "app_events_queue": str(outputs.get("app_events_queue_url", "")).rsplit("/", 1)[-1],
    }


def _mapping(function_arn: str, source_arn: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A mapping as the model reads it: its function's name, its kind, its queue or table."""
    service = source_arn.split(":")[2]
    found: dict[str, Any] = {
        "function": function_arn.split(":")[6] if function_arn.startswith("arn:") else function_arn,
        "kind": "sqs" if service == "sqs" else "stream",
        "batch_size": settings.get("BatchSize") or settings.get("batch_size"),
    }
    if service == "sqs":
        found["queue"] = source_arn.rsplit(":", 1)[-1]
        scaling = settings.get("ScalingConfig") or {}
        found["maximum_concurrency"] = scaling.get("MaximumConcurrency")
    else:
        found["table"] = source_arn.split(":table/", 1)[-1].split("/", 1)[0]
        found["parallelization_factor"] = settings.get("ParallelizationFactor")
    return found


# ---------------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------------


@dataclass
class Heard:
    type: str
    reason: str | None


@dataclass
class Drain:
    """Receives the app events queue (as the app: its requests are the subscriber's), by image."""

    sqs: Any
    url: str
    heard: dict[str, list[Heard]] = field(default_factory=lambda: defaultdict(list))
    stopping: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except Exception as error:  # keep draining; report at the end
                self.errors.append(f"{type(error).__name__}: {error}")
                self.stopping.wait(0.5)

    def poll(self) -> None:
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            try:
                body = json.loads(message["Body"])
                image = body["image"]["id"]
                reason = (body.get("failure") or {}).get("reason")
                self.heard[image].append(Heard(str(body.get("type")), reason))
            except (ValueError, KeyError, TypeError):
                continue
        if messages:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )


@dataclass
class Marks:
    """Where the stack's counters stood at one moment."""

    usage: dict[str, Any]
    journal: int  # bytes of logs/invocations.jsonl
    logs: dict[str, int]  # bytes of each function's log
    at: float


def marks(running: stack.Stack) -> Marks:
    logs_dir = running.state_dir / "logs"
    journal = logs_dir / "invocations.jsonl"
    return Marks(
        usage=running.control("usage", timeout=120),
        journal=journal.stat().st_size if journal.exists() else 0,
        logs={p.stem: p.stat().st_size for p in logs_dir.glob("*.log")},
        at=time.monotonic(),
    )


def journal_since(running: stack.Stack, offset: int) -> list[dict[str, Any]]:
    path = running.state_dir / "logs" / "invocations.jsonl"
    with path.open("rb") as stream:
        stream.seek(offset)
        data = stream.read()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def log_bytes_since(running: stack.Stack, before: dict[str, int]) -> dict[str, dict[str, int]]:
    """Bytes each function wrote to its log since ``before``, without the runtime's own
    START/END/REPORT lines (the model adds Lambda's, per invocation)."""
    found = {}
    for path in (running.state_dir / "logs").glob("*.log"):
        with path.open("rb") as stream:
            stream.seek(before.get(path.stem, 0))
            data = stream.read()
        lines = [line for line in data.splitlines(keepends=True) if not PLATFORM_LINE.match(line)]
        found[path.stem] = {"bytes": sum(len(line) for line in lines), "lines": len(lines)}
    return found


def wait_until_quiet(running: stack.Stack, seconds: float = QUIET_SECONDS) -> float:
    """Until no invocation has been recorded for ``seconds`` (at most QUIET_BOUND)."""
    path = running.state_dir / "logs" / "invocations.jsonl"
    started = time.monotonic()
    size, changed = path.stat().st_size, time.monotonic()
    while time.monotonic() - changed < seconds and time.monotonic() - started < QUIET_BOUND:
        time.sleep(0.5)
        now = path.stat().st_size
        if now != size:
            size, changed = now, time.monotonic()
    return time.monotonic() - started


def inputs(n: int) -> list[load.Planned]:
    """N uploads of the fixed mix (load.py's planner), all through the API."""
    sources = (
        load.read_manifest(load.CORPUS, "corpus")
        if (load.CORPUS / "manifest.csv").is_file()
        else []
    )
    renderable, corrupt = load.choose_sources(
        [*sources, *load.read_manifest(load.SAMPLES, "samples")]
    )
    return load.plan(renderable, corrupt, n, direct_fraction=0.0)


def run_workload(
    running: stack.Stack,
    n: int,
    *,
    concurrency: int = CONCURRENCY,
    timeout: float | None = None,
    say: Any = print,
) -> dict[str, Any]:
    """The workload on a running stack: what the stack counted, and what the app saw."""
    outputs = running.outputs()
    deployment = deployed(running, outputs)
    planned = inputs(n)
    app = clients(running, outputs["region"], capacity.APP, "sqs")["sqs"]
    agent = f"media-pipeline-capacity app/{capacity.APP}"
    local = threading.local()

    def upload(item: load.Planned) -> tuple[str | None, str | None]:
        if not hasattr(local, "client"):
            local.client = UploadClient(
                outputs["api_url"], outputs["api_key"], str(running.ca_bundle), user_agent=agent
            )
        try:
            created = local.client.request_upload(
                item.filename, content_type_of(item.filename), len(item.data)
            )
            status, text = local.client.post_file(created["upload"], item.data, item.filename)
        except Exception as error:  # an upload error is an outcome
            return None, f"{type(error).__name__}: {error}"
        if status not in (200, 201, 204):
            return created["image_id"], f"S3 answered {status}: {text[:200]}"
        return created["image_id"], None

    drain = Drain(app, outputs["app_events_queue_url"])
    before = marks(running)
    thread = threading.Thread(target=drain.run, name="drain", daemon=True)
    thread.start()
    say(f"==> {n} uploads through the API, {concurrency} at a time", flush=True)
    with concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="upload") as pool:
        results = list(pool.map(upload, planned))
    ids = [image for image, error in results if image and not error]
    errors = [error for _, error in results if error]
    bound = timeout if timeout is not None else default_timeout(n)
    deadline = time.monotonic() + bound
    next_line = time.monotonic() + 15
    while any(not drain.heard.get(i) for i in ids) and time.monotonic() < deadline:
        if time.monotonic() >= next_line:
            heard = sum(1 for i in ids if drain.heard.get(i))
            say(
                f"    {heard}/{len(ids)} notified after {time.monotonic() - before.at:.0f} s",
                flush=True,
            )
            next_line += 15
        time.sleep(0.25)
    quiet = wait_until_quiet(running)
    drain.stopping.set()
    thread.join(timeout=30)
    after = marks(running)
    window = after.at - before.at
    say(f"    done in {window:.0f} s (quiet after {quiet:.0f} s)", flush=True)

    notified = [i for i in ids if drain.heard.get(i)]
    last = {i: drain.heard[i][-1] for i in notified}
    failed = [h for h in last.values() if h.type == "image.failed"]
    reasons: dict[str, int] = defaultdict(int)
    for heard in failed:
        reasons[heard.reason or "unknown"] += 1
    return {
        "n": n,
        "window_s": window,
        "images": {
            "uploaded": len(ids),
            "notified": len(notified),
            "ready": sum(1 for h in last.values() if h.type == "image.ready"),
            "failed": len(failed),
            "failed_by_reason": dict(reasons),
            "not_notified": len(ids) - len(notified),
            "upload_errors": errors[:20],
            "duplicates": sum(1 for i in notified if len(drain.heard[i]) > 1),
            "messages": sum(len(drain.heard[i]) for i in notified),
        },
        "usage": capacity.usage_delta(before.usage, after.usage),
        "journal": journal_since(running, before.journal),
        "logs": log_bytes_since(running, before.logs),
        "deployment": deployment,
        "drain_errors": drain.errors[:20],
    }


# ---------------------------------------------------------------------------------------------
# Production settings: the tree's production root, planned
# ---------------------------------------------------------------------------------------------

PYTHONS = [f"python3.{minor}" for minor in range(9, 16)]
ARCHITECTURES = ("arm64", "x86_64")


def staged_packages(build_dir: Path, workdir: Path) -> Path:
    """A build directory where every runtime and architecture the production variables may
    name holds the host's packages (a plan only hashes them): the tfvars decide which."""
    host = next((p for p in sorted(build_dir.glob("python3.*-*")) if p.is_dir()), None)
    if host is None:
        raise FileNotFoundError(f"no packages under {build_dir}: build them first")
    staged = workdir / "packages"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for python in PYTHONS:
        for architecture in ARCHITECTURES:
            (staged / f"{python}-{architecture}").symlink_to(host.resolve())
    return staged


def production_settings(target: Target, tfstate: dict[str, Any]) -> dict[str, Any]:
    """The production settings of the tree: a plan of its ``terraform/envs/aws`` with
    ``terraform/envs/prod.tfvars.example`` (against a throwaway moto server), read by resource
    address and matched to what the capacity stack deployed at the same address."""
    tfvars = target.tree / "terraform" / "envs" / "prod.tfvars.example"
    with tempfile.TemporaryDirectory(prefix="capacity-plan-") as tmp, plan_check.emulator() as url:
        work = Path(tmp)
        env = terraform.environment(
            work, {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        )
        root = terraform.staged_root(
            target.tree / "terraform" / "envs" / "aws", work / "stage", endpoint=url
        )
        packages = staged_packages(target.tree / "build", work)
        shown = terraform.plan(env, root, work / "plan", {"build_dir": str(packages)}, [tfvars])
    settings = settings_from_plan(terraform.managed_changes(shown), local_instances(tfstate))
    settings["source"] = (
        f"plan of terraform/envs/aws with terraform/envs/prod.tfvars.example ({target.label})"
    )
    return settings


def local_instances(tfstate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The attributes of every managed resource instance of a state, by address."""
    found = {}
    for resource in tfstate.get("resources", []):
        if resource.get("mode") != "managed":
            continue
        base = ".".join(
            p for p in (resource.get("module"), resource["type"], resource["name"]) if p
        )
        for instance in resource.get("instances", []):
            key = instance.get("index_key")
            suffix = "" if key is None else (f'["{key}"]' if isinstance(key, str) else f"[{key}]")
            found[base + suffix] = instance.get("attributes", {})
    return found


_INDEX = re.compile(r"\[[^\]]*\]$")


def resource_type(address: str) -> str:
    """``aws_lambda_function`` of ``module.a.module.b.aws_lambda_function.this["x"]``."""
    parts = _INDEX.sub("", address).split(".")
    return parts[-2] if len(parts) >= 2 else ""


def _first(value: Any) -> dict[str, Any]:
    return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}


def settings_from_plan(
    changes: dict[str, dict[str, Any]], local: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Functions, mappings, usage plans and schedules of a production plan, named as the local
    stack deployed them (the same resource address in both roots)."""
    functions: dict[str, dict[str, Any]] = {}
    mappings = []
    plans = []
    rules: dict[str, str] = {}
    targets: list[tuple[str, str]] = []
    for address, change in changes.items():
        after = change.get("after") or {}
        kind = resource_type(address)
        here = local.get(address, {})
        if kind == "aws_lambda_function":
            name = here.get("function_name") or after.get("function_name")
            reserved = after.get("reserved_concurrent_executions")
            functions[name] = {
                "memory": after.get("memory_size"),
                "timeout": after.get("timeout"),
                "reserved": reserved if reserved is not None and reserved >= 0 else None,
                "architecture": (after.get("architectures") or ["x86_64"])[0],
                "address": address,
            }
        elif kind == "aws_lambda_event_source_mapping" and here:
            mapping = _mapping(here["function_name"], here["event_source_arn"], {})
            mapping["batch_size"] = after.get("batch_size")
            scaling = _first(after.get("scaling_config"))
            if mapping["kind"] == "sqs":
                mapping["maximum_concurrency"] = scaling.get("maximum_concurrency")
                provisioned = _first(after.get("provisioned_poller_config"))
                mapping["provisioned_pollers"] = provisioned or None
            else:
                mapping["parallelization_factor"] = after.get("parallelization_factor") or 1
            mappings.append(mapping)
        elif kind == "aws_api_gateway_usage_plan":
            throttle = _first(after.get("throttle_settings"))
            quota = _first(after.get("quota_settings"))
            plans.append(
                {
                    "rate": throttle.get("rate_limit"),
                    "burst": throttle.get("burst_limit"),
                    "quota_limit": quota.get("limit"),
                    "quota_period": quota.get("period"),
                }
            )
        elif kind == "aws_cloudwatch_event_rule" and after.get("schedule_expression"):
            rules[here.get("name") or after.get("name")] = after["schedule_expression"]
        elif kind == "aws_cloudwatch_event_target" and here:
            targets.append((here.get("rule", ""), here.get("arn", "")))
    schedules = {
        arn.split(":")[6]: rules[rule]
        for rule, arn in targets
        if rule in rules and ":function:" in arn
    }
    return {
        "functions": functions,
        "mappings": mappings,
        "usage_plans": plans,
        "schedules": schedules,
    }


def local_settings(deployment: dict[str, Any]) -> dict[str, Any]:
    """Without a production plan: the settings the local stack runs (flagged as such)."""
    return {
        "source": "the local stack's own settings (no production plan)",
        "functions": {
            name: {
                "memory": f["memory"],
                "timeout": f["timeout"],
                "reserved": None,
                "architecture": f["architecture"],
            }
            for name, f in deployment["functions"].items()
        },
        "mappings": deployment["mappings"],
        "usage_plans": [],
        "schedules": {},
    }


# ---------------------------------------------------------------------------------------------
# One tree, end to end
# ---------------------------------------------------------------------------------------------


def measure(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    build(target)
    state_dir = target.place / "stack"
    source = stack.Source.tree(target.tree)
    print(f"==> the embedded stack for {target.label} on port {args.port}", flush=True)
    # Another ref's policies were never checked by this checkout's enforcement: its stack runs
    # with IAM off, and so does the working tree's when compared with it (the same server work).
    running = stack.up(
        port=args.port,
        state_dir=state_dir,
        watch_pid=None if args.keep else os.getpid(),
        quiet=False,
        source=source,
        # the product's defaults, not the demo's: no extra formats unless asked, no crops
        variables={"extra_formats": json.dumps(args.extra_formats), "cropped_renditions": "{}"},
        iam="off" if args.ref or args.base else None,
    )
    started = time.monotonic()
    try:
        measured = run_workload(running, args.n, concurrency=args.concurrency, timeout=args.timeout)
        tfstate = json.loads((state_dir / "terraform.tfstate").read_text())
    finally:
        if not args.keep:
            stack.down(state_dir)
            print("==> stack stopped", flush=True)
    measured["workload_s"] = time.monotonic() - started
    if args.no_plan:
        production = local_settings(measured["deployment"])
    else:
        print("==> planning the production root for its settings", flush=True)
        try:
            production = production_settings(target, tfstate)
        except (terraform.TerraformError, OSError, subprocess.CalledProcessError) as error:
            print(f"    the plan failed ({error}); using the local stack's settings", flush=True)
            production = local_settings(measured["deployment"])
    measured.update(
        label=target.label, sha=target.sha, production=production, extra_formats=args.extra_formats
    )
    return measured


def report_for(measured: dict[str, Any], place: Path) -> dict[str, Any]:
    """The model of a measurement, written with it to ``place/report.json`` (the measurement
    first: a model that fails leaves it there for --remodel)."""
    place.mkdir(parents=True, exist_ok=True)
    path = place / "report.json"
    path.write_text(json.dumps({"measurement": measured}, indent=1, default=str) + "\n")
    report = capacity.model(measured, capacity.load_prices())
    path.write_text(
        json.dumps({"report": report, "measurement": measured}, indent=1, default=str) + "\n"
    )
    return report


def remodel(paths: list[Path]) -> int:
    """Model saved measurements again (after a change of the model or the prices)."""
    reports = []
    for path in paths:
        measured = json.loads(path.read_text())["measurement"]
        report = report_for(measured, path.parent)
        reports.append(report)
        print(capacity.format_report(report) + "\n")
    if len(reports) == 2:
        print(f"## {reports[1]['label']} against {reports[0]['label']}\n")
        print(capacity.compare(reports[0], reports[1]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100, help="uploads (100)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--ref", help="measure this git ref instead of the working tree")
    group.add_argument("--base", help="measure this git ref AND the working tree, side by side")
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help="uploads in flight (4)"
    )
    parser.add_argument(
        "--timeout", type=float, help="bound of the wait for notifications (180 + 2N s)"
    )
    parser.add_argument(
        "--port", type=int, default=stack.DEFAULT_PORT + 50, help="the stack's port"
    )
    parser.add_argument(
        "--extra-formats",
        type=lambda text: [f.strip().upper() for f in text.split(",") if f.strip()],
        default=[],
        help="the renditions' extra formats (e.g. AVIF,WEBP; default none, the module's"
        " default; the demo stack's WEBP is not applied)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--no-plan", action="store_true", help="price the local settings, no plan")
    parser.add_argument(
        "--remodel",
        type=Path,
        nargs="+",
        help="model the measurements saved in these report.json files again (no run)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.concurrency < 1:
        parser.error("--n and --concurrency must be positive")
    if args.remodel:
        return remodel(args.remodel)

    started = time.monotonic()
    targets = (
        [ref_target(args.base), working_tree()]
        if args.base
        else [ref_target(args.ref) if args.ref else working_tree()]
    )
    reports = []
    for target in targets:
        measured = measure(target, args)
        report = report_for(measured, target.place)
        reports.append(report)
        print()
        print(capacity.format_report(report))
        print(f"\nReport: {target.place / 'report.json'}\n", flush=True)
    if len(reports) == 2:
        print(f"## {reports[1]['label']} against {reports[0]['label']}\n")
        print(capacity.compare(reports[0], reports[1]))
    print(f"\n(make capacity took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
