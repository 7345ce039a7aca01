"""Thumbnail worker: S3 upload events from SQS -> renditions in S3 -> the media item.

Renditions (default large 1024, medium 512, small 128 px) are written to the renditions bucket
under keys that include the source ETag; the media item records them and turns READY once the
metadata worker's half is in too. Partial batch failures: one bad record never fails the others.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from media_pipeline.aws import client
from media_pipeline.config.workers import ThumbnailSettings
from media_pipeline.halves import RenditionsWork
from media_pipeline.sqs_worker import SqsWorker

settings = ThumbnailSettings.from_env()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A batch whose every record failed is reported item by item, like any other: the messages are
# retried the same way, and the invocation is not counted as a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
s3 = client("s3")
worker = SqsWorker(
    work=RenditionsWork(
        s3, settings.renditions_bucket, settings.renditions, settings.limits, settings.encode
    ),
    settings=settings,
    s3=s3,
    dynamodb=client("dynamodb"),
    logger=logger,
    metrics=metrics,
)


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict:
    return worker.handle(record)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    worker.register_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
