"""Notifier: media table stream -> one SNS message per transition to READY or FAILED.

Stream records are delivered at least once (retries, bisection); publishing is idempotent per
image version and status, so subscribers get each transition once. Partial batch failures let the
stream resume from the first record that failed.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from media_pipeline import notifications
from media_pipeline.aws import TRACED_MODULES, client
from media_pipeline.config.notifier import NotifierSettings

settings = NotifierSettings.from_env()
logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)
sns = client("sns")
idempotency = IdempotencyConfig(event_key_jmespath="[id, etag, type]")
persistence = DynamoDBPersistenceLayer(
    table_name=settings.idempotency_table, boto3_client=client("dynamodb")
)


@idempotent_function(
    data_keyword_argument="identity",
    config=idempotency,
    persistence_store=persistence,
    key_prefix="notifier.publish",
)
def publish_once(identity: dict, notification: notifications.Notification) -> str:
    return notifications.publish(sns, settings.topic_arn, notification)


@tracer.capture_method
def record_handler(record: DynamoDBRecord) -> None:
    notification = notifications.transition(record.dynamodb.old_image, record.dynamodb.new_image)
    if notification is None:
        return
    message_id = publish_once(identity=notification.identity, notification=notification)
    logger.info(
        "notification published",
        image_id=notification.identity["id"],
        type=notification.body["type"],
        message_id=message_id,
    )
    metrics.add_metric(name="NotificationsPublished", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    idempotency.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
