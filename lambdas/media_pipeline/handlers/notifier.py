"""Notifier: media table stream -> one SNS message per transition (image.ready, image.failed,
image.deleted, image.updated; docs/events.md).

Stream records are delivered at least once (retries, bisection): each notification is published
once, found in the idempotency table when its record comes again (``media_pipeline.announcer``,
which works on the whole batch: one read of that table, PublishBatch, one write). A record that
fails is reported (partial batch response): the stream resumes from it.
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from media_pipeline import delivery
from media_pipeline.announcer import Announcer, Change
from media_pipeline.aws import TRACED_MODULES, client
from media_pipeline.config.notifier import NotifierSettings

settings = NotifierSettings.from_env()
logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()
sns = client("sns")
announcer = Announcer(
    sns=sns,
    dynamodb=client("dynamodb"),
    topic_arn=settings.topic_arn,
    table=settings.idempotency_table,
    # A READY image's picture: its renditions' CDN URLs (signed with the key in SSM), if any.
    links=delivery.from_env(os.environ, s3=None, ssm=lambda: client("ssm"))
    if os.environ.get("CDN_URL")
    else None,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def lambda_handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict:
    changes = [
        Change(
            sequence=record.dynamodb.sequence_number,
            old=record.dynamodb.old_image,
            new=record.dynamodb.new_image,
        )
        for record in event.records
    ]
    result = announcer.announce(changes)
    for notification in result.published:
        logger.info(
            "notification published",
            image_id=notification.identity["id"],
            type=notification.body["type"],
        )
    for error in result.errors:
        logger.error("record not announced; the stream resumes from the first", error=error)
    if result.already:
        logger.info("published before", count=len(result.already))
    metrics.add_metric(
        name="NotificationsPublished", unit=MetricUnit.Count, value=len(result.published)
    )
    failures = [{"itemIdentifier": result.failed}] if result.failed else []
    return {"batchItemFailures": failures}
