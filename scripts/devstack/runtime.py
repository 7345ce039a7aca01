"""The local Lambda runtime: runs what the emulator says is deployed, the way Lambda would.

Whenever a request through the server changes them (and every 10 s besides), it reads the
functions and event source mappings from the emulator's Lambda API, the REST APIs from its API
Gateway, and the scheduled rules from its EventBridge API (what Terraform created is the single
source of truth) and reconciles: new or changed functions get fresh pools of execution environments,
mappings get pollers (pollers.py), scheduled rules that target functions get timers
(schedules.py), removed ones are stopped.
Each invocation is recorded in the function's log (START / END / REPORT, like CloudWatch) and,
as one JSON line, in ``logs/invocations.jsonl`` for tests and for people.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.functions import CodeStore, FunctionPool, FunctionSpec, RuntimeLibraries
from devstack.gateway import LocalGateway
from devstack.iam import Enforcement
from devstack.pollers import SqsPoller, StreamPoller, _Poller, queue_url_from_arn
from devstack.sandbox import Result
from devstack.schedules import Scheduler
from devstack.usage import LAMBDA_SERVICE, RUNTIME_INTERNAL

# The runtime follows the emulator's configuration (functions, mappings, REST APIs, schedules).
# The server tells it when a request has changed it (configuration_changed), and it re-reads
# everything then, after a short pause that takes in the rest of a burst (a terraform apply
# writes hundreds of times); otherwise every IDLE_REFRESH_SECONDS, in case a change came another
# way. Re-reading every second cost about 20 AWS calls a second on an idle stack.
IDLE_REFRESH_SECONDS = 10.0
BURST_SECONDS = 0.2


class LocalLambda:
    def __init__(
        self,
        *,
        endpoint: str,
        ca_bundle: Path,
        region: str,
        state_dir: Path,
        code_dirs: list[Path],
        runtime_requirements: Path,
        capacity: int = 2,
        enforcement: Enforcement | None = None,
    ) -> None:
        self.endpoint = endpoint
        # IAM (devstack/iam.py): each function runs as its role; off: everything as "test"
        self.iam = enforcement or Enforcement(enabled=False, region=region)
        self.region = region
        self._logs = state_dir / "logs"
        self._logs.mkdir(parents=True, exist_ok=True)
        self._code = CodeStore(code_dirs, state_dir / "lambda")
        self._runtime_libs = RuntimeLibraries(runtime_requirements, state_dir)
        self._capacity = capacity
        self._pools: dict[str, FunctionPool] = {}
        self._pollers: dict[str, tuple[dict[str, Any], _Poller]] = {}
        self._stopping: list[
            tuple[dict[str, Any], _Poller]
        ] = []  # stopped, threads still finishing
        self._layer_hashes: dict[str, str] = {}
        self._log_files: dict[str, IO[bytes]] = {}
        self._journal = (self._logs / "invocations.jsonl").open("a", encoding="utf-8")
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._refreshed = threading.Event()
        self._changed = threading.Event()
        self.refresh_error: str | None = None
        session = boto3.session.Session(
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - the emulator's fixed credentials
            region_name=region,
        )

        self._ca_bundle = ca_bundle

        def clients(app_id: str, *names: str) -> dict[str, Any]:
            # The app id tags every request (User-Agent ``app/<id>``): the usage recorder
            # (usage.py) tells the Lambda service's own requests (its pollers: billed on AWS)
            # from the runtime reading its configuration (not an AWS request at all).
            config = Config(
                retries={"mode": "standard", "max_attempts": 5},
                max_pool_connections=32,
                user_agent_appid=app_id,
            )
            return {
                name: session.client(
                    name, endpoint_url=endpoint, config=config, verify=str(ca_bundle)
                )
                for name in names
            }

        # The runtime's own reads (its configuration, queue URLs): as the administrator. What
        # the Lambda service does for a function (its pollers) uses the function's role
        # (role_clients).
        self._clients = clients(RUNTIME_INTERNAL, "lambda", "apigateway", "events", "sqs")
        self._role_clients: dict[tuple[str, str], dict[str, Any]] = {}
        self.gateway = LocalGateway(self._clients["apigateway"], self.invoke)
        self.schedules = Scheduler(self.invoke)
        # What every execution environment sees besides the function's own variables.
        self._base_env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CA_BUNDLE": str(ca_bundle),
            **self.iam.credentials(None, ""),  # replaced by each function's role's
        }

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, expected_runtimes: tuple[str, ...] = ()) -> None:
        """Start reconciling. The runtime libraries of ``expected_runtimes`` are installed now,
        in the background, so that the first invocation does not wait for pip."""
        threading.Thread(target=self._refresh_loop, name="refresh", daemon=True).start()
        self.schedules.start()
        for runtime in expected_runtimes:
            threading.Thread(target=self._runtime_libs.path, args=(runtime,), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()  # wakes the refresh loop
        self.schedules.stop()
        with self._lock:
            pollers = [p for _, p in self._pollers.values()]
            pools = list(self._pools.values())
        for poller in pollers:
            poller.stop(wait=False)
        for poller in pollers:
            poller.stop(wait=True)
        for pool in pools:
            pool.retire()

    def refresh_now(self) -> None:
        """Reconcile with the emulator now (after a deployment), and wait until done."""
        self._refreshed.clear()
        self._refresh()

    def configuration_changed(self) -> None:
        """A request through the server has changed what the runtime follows: re-read it soon."""
        self._changed.set()

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            self._changed.clear()
            try:
                self._refresh()
                self.refresh_error = None
            except Exception as error:  # keep serving; report through /_devstack/status
                self.refresh_error = f"{type(error).__name__}: {error}"
            if self._changed.wait(IDLE_REFRESH_SECONDS):
                self._stop.wait(BURST_SECONDS)

    def _refresh(self) -> None:
        lam = self._clients["lambda"]
        configs = [
            c for page in lam.get_paginator("list_functions").paginate() for c in page["Functions"]
        ]
        mappings = [
            m
            for page in lam.get_paginator("list_event_source_mappings").paginate()
            for m in page["EventSourceMappings"]
        ]
        specs = {}
        for config in configs:
            reserved = lam.get_function_concurrency(FunctionName=config["FunctionName"]).get(
                "ReservedConcurrentExecutions"
            )
            specs[config["FunctionName"]] = FunctionSpec.from_api(config, reserved)
        with self._lock:
            self._reconcile_functions(specs)
            self._reconcile_mappings(mappings)
        self.gateway.refresh()
        self._refresh_schedules()
        self._refreshed.set()

    def _refresh_schedules(self) -> None:
        events = self._clients["events"]
        rules = [
            r
            for page in events.get_paginator("list_rules").paginate()
            for r in page["Rules"]
            if r.get("ScheduleExpression") and r.get("State") == "ENABLED"
        ]
        targets: dict[str, list[dict[str, Any]]] = {}
        for rule in rules:
            try:
                targets[rule["Arn"]] = [
                    t
                    for page in events.get_paginator("list_targets_by_rule").paginate(
                        Rule=rule["Name"]
                    )
                    for t in page["Targets"]
                ]
            except ClientError as error:  # deleted since it was listed
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
        self.schedules.update(rules, targets)

    def _reconcile_functions(self, specs: dict[str, FunctionSpec]) -> None:
        for name in set(self._pools) - set(specs):
            self._pools.pop(name).retire()
        for name, spec in specs.items():
            pool = self._pools.get(name)
            if pool is not None and pool.spec == spec:
                continue
            if pool is not None:
                pool.retire()
            self._pools[name] = FunctionPool(
                spec,
                layer_hashes=tuple(self._layer_hash(arn) for arn in spec.layer_arns),
                code=self._code,
                runtime_libs=self._runtime_libs,
                base_env=self._base_env,
                log=self._log_file(name),
                capacity=self._capacity,
                region=self.region,
                credentials=self.iam.credentials(spec.role, name),
                on_environment_start=self._authorize_service_writes,
            )

    def _authorize_service_writes(self, spec: FunctionSpec, stream: str) -> None:
        """What Lambda writes for an environment with its execution role: its log stream and
        events, and, with active tracing, its X-Ray segments. Here logs go to .local/logs and
        traces nowhere; the role's permission for them is checked all the same."""
        if not spec.role:
            return
        account = spec.arn.split(":")[4]
        log_stream = (
            f"arn:aws:logs:{self.region}:{account}:log-group:/aws/lambda/{spec.name}"
            f":log-stream:{stream}"
        )
        writes = [("logs:CreateLogStream", log_stream), ("logs:PutLogEvents", log_stream)]
        if spec.tracing == "Active":  # X-Ray has no resource-level permissions
            writes += [("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")]
        for action, resource in writes:
            self.iam.authorize_local(spec.role, spec.name, LAMBDA_SERVICE, action, resource)

    def role_clients(self, function: str) -> dict[str, Any]:
        """SQS and DynamoDB Streams clients with the function's execution role, tagged as the
        Lambda service (usage.py): what its event source mappings use, as on AWS."""
        with self._lock:
            pool = self._pools.get(function)
        role = pool.spec.role if pool is not None else ""
        key = (function, role)
        with self._lock:
            if key not in self._role_clients:
                credentials = self.iam.credentials(role or None, function)
                session = boto3.session.Session(
                    aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                    aws_session_token=credentials["AWS_SESSION_TOKEN"],
                    region_name=self.region,
                )
                config = Config(
                    retries={"mode": "standard", "max_attempts": 5},
                    max_pool_connections=32,
                    user_agent_appid=LAMBDA_SERVICE,
                )
                self._role_clients[key] = {
                    name: session.client(
                        name,
                        endpoint_url=self.endpoint,
                        config=config,
                        verify=str(self._ca_bundle),
                    )
                    for name in ("sqs", "dynamodbstreams")
                }
            return self._role_clients[key]

    def credentials_of(self, function: str, session: str) -> dict[str, str] | None:
        """Credentials of a session of the function's role (None: no such function)."""
        with self._lock:
            pool = self._pools.get(function)
        if pool is None:
            return None
        return self.iam.credentials(pool.spec.role or None, session)

    def queue_url(self, arn: str) -> str:
        """A queue's URL from its ARN: the Lambda service knows it (no call of the role's)."""
        return queue_url_from_arn(self._clients["sqs"], arn)

    def _layer_hash(self, arn: str) -> str:
        if arn not in self._layer_hashes:
            name, version = arn.split(":")[6:8]
            layer = self._clients["lambda"].get_layer_version(
                LayerName=name, VersionNumber=int(version)
            )
            self._layer_hashes[arn] = layer["Content"]["CodeSha256"]
        return self._layer_hashes[arn]

    def _reconcile_mappings(self, mappings: list[dict[str, Any]]) -> None:
        wanted = {m["UUID"]: m for m in mappings if m.get("State") == "Enabled"}
        for key in list(self._pollers):
            config, poller = self._pollers[key]
            if key not in wanted or _mapping_config(wanted[key]) != _mapping_config(config):
                poller.stop(wait=False)
                self._stopping.append(self._pollers.pop(key))
        self._stopping = [(c, p) for c, p in self._stopping if p.running]
        for key, mapping in wanted.items():
            if key in self._pollers:
                continue
            service = mapping["EventSourceArn"].split(":")[2]
            function = mapping["FunctionArn"].split(":")[6]
            clients = self.role_clients(function)
            if service == "sqs":
                poller: _Poller = SqsPoller(
                    mapping, self.invoke, clients, self.region, queue_url=self.queue_url
                )
                concurrency = (mapping.get("ScalingConfig") or {}).get(
                    "MaximumConcurrency"
                ) or self._capacity
                poller.start(threads=max(1, min(concurrency, self._capacity)))
            elif service == "dynamodb":
                poller = StreamPoller(
                    mapping, self.invoke, clients, self.region, queue_url=self.queue_url
                )
                poller.start(threads=1)
            else:
                continue  # not a source this runtime polls
            self._pollers[key] = (mapping, poller)

    # -- invocations ------------------------------------------------------------------------

    def invoke(
        self, function: str, payload: bytes, source: str = "invoke", items: list[str] | None = None
    ) -> Result:
        name = function.split(":")[6] if function.startswith("arn:") else function
        with self._lock:
            pool = self._pools.get(name)
        if pool is None:
            self._refresh()
            with self._lock:
                pool = self._pools.get(name)
        if pool is None:
            return Result.failure(
                "", "NotFound", "ResourceNotFoundException", f"Function not found: {name}"
            )
        request_id = str(uuid.uuid4())
        log = self._log_file(name)
        _log_line(log, f"START RequestId: {request_id} Version: $LATEST")
        result = pool.invoke(payload, request_id)
        if not result.ok:
            _log_line(
                log,
                f"{request_id} ERROR {result.error}: "
                f"{result.payload[:2000].decode(errors='replace')}",
            )
        _log_line(log, f"END RequestId: {request_id}")
        init = f"\tInit Duration: {result.init_ms:.2f} ms" if result.init_ms else ""
        _log_line(
            log,
            f"REPORT RequestId: {request_id}\tDuration: {result.duration_ms:.2f} ms\t"
            f"Memory Size: {pool.spec.memory} MB\tMax Memory Used: {result.max_memory_mb} MB{init}",
        )
        self._record(name, source, items or [], result)
        return result

    def kill(self, function: str, include_idle: bool = False) -> int | None:
        """SIGKILL the function's environments busy with an invocation (and, with
        ``include_idle``, the idle ones), as Lambda does on out-of-memory or a crash; each
        invocation in flight ends with ``Runtime.ExitError``. None: no such function."""
        name = function.split(":")[6] if function.startswith("arn:") else function
        with self._lock:
            pool = self._pools.get(name)
        return None if pool is None else pool.kill(include_idle=include_idle)

    def _record(self, function: str, source: str, items: list[str], result: Result) -> None:
        failure = (result.json() if not result.ok else None) or {}
        if not isinstance(failure, dict):
            failure = {}
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "function": function,
            "request_id": result.request_id,
            "source": source,
            "items": items,
            "error": result.error,
            # Lambda's {errorType, errorMessage} of a failed invocation
            "error_type": failure.get("errorType"),
            "error_message": str(failure["errorMessage"])[:500]
            if "errorMessage" in failure
            else None,
            "failed_items": _reported_failures(result),
            "duration_ms": round(result.duration_ms, 2),
            "init_ms": round(result.init_ms, 2) if result.init_ms else None,
            "max_memory_mb": result.max_memory_mb,
        }
        with self._lock:
            self._journal.write(json.dumps(entry) + "\n")
            self._journal.flush()

    def _log_file(self, function: str) -> IO[bytes]:
        with self._lock:
            if function not in self._log_files:
                self._log_files[function] = (self._logs / f"{function}.log").open("ab", buffering=0)
            return self._log_files[function]

    # -- introspection ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "refreshed": self._refreshed.is_set(),
                "refresh_error": self.refresh_error,
                "functions": {
                    name: {
                        "code_sha256": pool.spec.code_sha256,
                        # which configuration is running (an update takes effect within a refresh)
                        "environment_sha256": environment_sha256(dict(pool.spec.environment)),
                        "runtime": pool.spec.runtime,
                        "invocations": pool.invocations,
                        "errors": pool.errors,
                        "cold_starts": pool.cold_starts,
                        **pool.environments,
                    }
                    for name, pool in self._pools.items()
                },
                "mappings": {
                    key: {
                        "function": poller.function_name,
                        "source": config["EventSourceArn"],
                        "running": poller.running,
                        "batches": poller.batches,
                        "last_error": poller.last_error,
                    }
                    for key, (config, poller) in self._pollers.items()
                },
                "rest_apis": self.gateway.apis(),
                "schedules": self.schedules.status(),
                # disabled or changed mappings whose pollers are still finishing a batch
                "stopping": sorted(
                    {config["UUID"] for config, poller in self._stopping if poller.running}
                ),
            }


def _mapping_config(mapping: dict[str, Any]) -> str:
    ignored = {"LastModified", "LastProcessingResult", "State", "StateTransitionReason"}
    return json.dumps(
        {k: v for k, v in mapping.items() if k not in ignored}, sort_keys=True, default=str
    )


def _reported_failures(result: Result) -> list[str]:
    body = result.json() if result.ok else None
    if not isinstance(body, dict):
        return []
    return [
        f.get("itemIdentifier") for f in body.get("batchItemFailures") or [] if isinstance(f, dict)
    ]


def _log_line(log: IO[bytes], line: str) -> None:
    log.write((line + "\n").encode())


def environment_sha256(environment: dict[str, str]) -> str:
    """A digest of a function's environment variables, as ``status`` reports it."""
    text = json.dumps(environment, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
