"""Metadata worker: S3 upload events from SQS -> what the image is -> the media item.

Records dimensions, format, mode, frame count, orientation, ICC profile, selected EXIF (GPS only
as a flag) and the SHA-256 of the bytes. The media item turns READY once the renditions worker's
half is in too. Partial batch failures: one bad record never fails the others.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from media_pipeline.aws import TRACED_MODULES, client
from media_pipeline.config.workers import MetadataSettings
from media_pipeline.pipeline.halves import MetadataWork
from media_pipeline.pipeline.sqs import SqsWorker

settings = MetadataSettings.from_env()
logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()
s3 = client("s3")
sqs = client("sqs")  # schedules each failed record's retry
worker = SqsWorker(
    work=MetadataWork(settings.limits, include_gps=settings.include_gps),
    settings=settings,
    s3=s3,
    dynamodb=client("dynamodb"),
    sqs=sqs,
    logger=logger,
    metrics=metrics,
    tracer=tracer,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return worker.process_batch(event, context)
