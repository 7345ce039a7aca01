data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-role"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts every log group at rest; a customer-managed key is used when kms_key_arn is set (its key policy must then allow logs.<region>.amazonaws.com).
  # checkov:skip=CKV_AWS_338: operational logs, not an audit trail: retention is the deployment's choice (log_retention_days, 30 days by default; audit belongs in CloudTrail).
  name              = "/aws/lambda/${var.name}"
  kms_key_id        = var.kms_key_arn
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    # X-Ray has no resource-level permissions: "*" is the only resource these actions accept.
    for_each = var.tracing_mode == "Active" ? [1] : []
    content {
      sid       = "WriteTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.policy_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_116: never invoked asynchronously: event source mappings invoke it, and each has its own dead-letter target (the SQS redrive policy, the stream's on-failure queue).
  # checkov:skip=CKV_AWS_117: it only calls AWS APIs (S3, DynamoDB, SNS, SQS) over TLS; a VPC would add NAT gateways or endpoints and no protection here.
  # checkov:skip=CKV_AWS_272: packages are built and deployed by this repository's own pipeline (make build, terraform apply); code signing needs an AWS Signer profile, an operator's choice documented in docs/deploy.md.
  # checkov:skip=CKV_AWS_173: the environment holds only resource names and tuning values, no secrets; Lambda encrypts it at rest, with kms_key_arn when set.
  function_name                  = var.name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  filename                       = var.zip_file
  source_code_hash               = filebase64sha256(var.zip_file)
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  layers                         = var.layers
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = var.tags

  # The role's policy must exist before the function can use it (e.g. an event source mapping
  # validating queue permissions right after creation), and the log group before the function
  # writes to it (Lambda would otherwise create one with no retention).
  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}
