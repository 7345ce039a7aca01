"""Metadata worker: S3 upload events from SQS -> what the image is -> the media item.

Records dimensions, format, mode, frame count, orientation, ICC profile, selected EXIF (GPS only
as a flag) and the SHA-256 of the bytes. The media item turns READY once the thumbnail worker's
half is in too. Partial batch failures: one bad record never fails the others.
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
from media_pipeline.config.workers import MetadataSettings
from media_pipeline.halves import MetadataWork
from media_pipeline.sqs_worker import SqsWorker

settings = MetadataSettings.from_env()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A batch whose every record failed is reported item by item, like any other: the messages are
# retried the same way, and the invocation is not counted as a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
s3 = client("s3")
worker = SqsWorker(
    work=MetadataWork(settings.limits),
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
