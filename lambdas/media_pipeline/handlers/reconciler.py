"""Reconciler: on a schedule (and on demand), settle what the event flow gave up on or lost.

Each run reads the workers' dead-letter queues (leaving the messages there) and ends each job's
item READY or FAILED ``processing_error``; then finds items waiting longer than the bound and
settles or re-enqueues them (``media_pipeline.reconcile``). An operator may invoke it with
``{"sweeps": ["dead_letters", "stuck", "orphans"], "stuck_after_seconds": 600,
"dry_run": true}`` (every key optional; ``orphans`` lists the uploads bucket and is not part of
the scheduled run). It returns what it did.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from media_pipeline.aws import TRACED_MODULES, client
from media_pipeline.config.reconciler import ReconcilerSettings
from media_pipeline.media_store import MediaTable
from media_pipeline.reconcile import Reconciler, Report

settings = ReconcilerSettings.from_env()
logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()
s3 = client("s3")
sqs = client("sqs")
table = MediaTable(client("dynamodb"), settings.media_table)

SCHEDULED_SWEEPS = ("dead_letters", "stuck")
SWEEPS = (*SCHEDULED_SWEEPS, "orphans")


class InvalidRequest(ValueError):
    """The invocation's options are not understood."""


def _options(event: Any) -> tuple[tuple[str, ...], int, bool]:
    if not isinstance(event, dict) or event.get("source") == "aws.events":
        return SCHEDULED_SWEEPS, settings.stuck_after_seconds, False
    sweeps = tuple(event.get("sweeps") or SCHEDULED_SWEEPS)
    unknown = [s for s in sweeps if s not in SWEEPS]
    if unknown:
        raise InvalidRequest(f"unknown sweeps {unknown}; known: {list(SWEEPS)}")
    stuck_after = event.get("stuck_after_seconds", settings.stuck_after_seconds)
    if not isinstance(stuck_after, int) or isinstance(stuck_after, bool) or stuck_after < 0:
        raise InvalidRequest("stuck_after_seconds must be a whole number of seconds >= 0")
    return sweeps, stuck_after, bool(event.get("dry_run", False))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    sweeps, stuck_after, dry_run = _options(event)
    reconciler = Reconciler(
        s3=s3,
        sqs=sqs,
        table=table,
        queues=settings.queues,
        stuck_after=timedelta(seconds=stuck_after),
        max_requeues=settings.max_requeues,
        dry_run=dry_run,
    )
    report = Report()
    if "dead_letters" in sweeps:
        reconciler.dead_letters(report)
    if "stuck" in sweeps:
        reconciler.stuck(report, now=datetime.now(UTC))
    if "orphans" in sweeps:
        reconciler.orphans(report, bucket=settings.uploads_bucket, prefix=settings.upload_prefix)
    for action, count in report.actions.items():
        metrics.add_metric(name=f"Reconciled_{action}", unit=MetricUnit.Count, value=count)
    result = {"sweeps": list(sweeps), "dry_run": dry_run, **report.to_dict()}
    logger.info("reconciled", **result)
    return result
