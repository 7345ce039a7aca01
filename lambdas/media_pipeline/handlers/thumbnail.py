"""The renditions worker: S3 upload events from SQS -> renditions in S3 -> the media item.

Renditions (default large 1024, medium 512, small 128 px) are written to the renditions bucket
under keys that include the source ETag and the settings' fingerprint; the media item records
them and turns READY once the metadata worker's half is in too. S3 "Object Deleted" events of
originals come here too: the item is marked DELETED and its renditions removed. Partial batch
failures: one bad record never fails the others.

Why this module is called *thumbnail*, the one place that says so: it is the name deployments
know the renditions worker by. The Lambda function and its handler path
(``media_pipeline.handlers.thumbnail``; ``lambdas/functions.json``), Terraform's
``module.thumbnail`` with its ``thumbnail-jobs`` queue and DLQ (``THUMBNAIL_QUEUE_URL`` /
``THUMBNAIL_DLQ_URL`` in the reconciler's environment), and the failure ``stage`` this half
reports (``"thumbnail"``: ``model.Half.RENDITIONS.stage``, stored on items, answered by the API,
sent in notifications). Renaming those would replace deployed resources (a new function and new
queues, the old ones' messages lost) and change stored records and a public contract, so they
stay. Everywhere else the code says *renditions*: ``Half.RENDITIONS``, ``RenditionsWork``,
``RenditionsSettings``, "the renditions worker".
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from media_pipeline import delivery, objects
from media_pipeline.aws import TRACED_MODULES, client
from media_pipeline.config.workers import RenditionsSettings
from media_pipeline.duplicates_index import DuplicatesIndex
from media_pipeline.media_store import MediaTable
from media_pipeline.pipeline.duplicates import DuplicateFinder
from media_pipeline.pipeline.halves import RenditionsWork
from media_pipeline.pipeline.sqs import SqsWorker

settings = RenditionsSettings.from_env()
logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()
s3 = client("s3")
sqs = client("sqs")  # schedules each failed record's retry
# Room for a lookup's 12 band Queries at once (duplicates_index) and the item's own calls: with
# botocore's default pool of 10, every lookup would open (TLS) and drop connections again.
dynamodb = client("dynamodb", Config(max_pool_connections=16))
# The app's earlier pictures this one duplicates (the duplicates table), found as it is recorded.
duplicates = (
    DuplicatesIndex(dynamodb, settings.duplicates_table) if settings.duplicates_table else None
)
worker = SqsWorker(
    work=RenditionsWork(
        objects.RenditionsBucket(s3, settings.renditions_bucket),
        settings.renditions,
        settings.limits,
        settings.encode,
        duplicates=(
            DuplicateFinder(
                duplicates,
                MediaTable(dynamodb, settings.media_table),
                settings.duplicates_policy,
            )
            if duplicates
            else None
        ),
    ),
    settings=settings,
    s3=s3,
    dynamodb=dynamodb,
    duplicates=duplicates,
    sqs=sqs,
    logger=logger,
    metrics=metrics,
    tracer=tracer,
    renditions_bucket=settings.renditions_bucket,
    deleted_ttl_seconds=settings.deleted_ttl_seconds,
    # a deleted original's renditions are dropped from the CDN's caches too
    forget=delivery.invalidator_from_env(os.environ, cloudfront=lambda: client("cloudfront")),
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return worker.process_batch(event, context)
