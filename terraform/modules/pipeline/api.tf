# ---------------------------------------------------------------------------------------------
# The upload API: API Gateway REST API -> api Lambda (proxy integration).
#
#   POST   /uploads        presigned POST + media item AWAITING_UPLOAD
#   GET    /images         the app's images, newest first, a page at a time
#   GET    /images/{id}    status, metadata, renditions (presigned GETs)
#   PATCH  /images/{id}    the app's framing of its cropped renditions; their job sent again
#   DELETE /images/{id}    original, renditions and (after a while) the item deleted
#
# Every route goes to the function with ANY, so that a wrong method gets the function's JSON
# 405 rather than API Gateway's 403; OPTIONS (CORS preflight) needs no key, everything else an
# API key (usage plan with throttle and quota) and, optionally, a Cognito user pool token.
# The contract is docs/openapi.yaml; the explicit resources below are what the emulators
# support (moto's OpenAPI import is partial). tests/unit/test_api_contract.py checks that the
# document, these resources and the routes the function serves (lambdas/media_pipeline/
# routes.py) are the same paths and methods.
# ---------------------------------------------------------------------------------------------

locals {
  api_routes = {
    uploads = aws_api_gateway_resource.uploads.id
    images  = aws_api_gateway_resource.images.id
    image   = aws_api_gateway_resource.image.id
  }
  api_authorization = length(var.api_cognito_user_pool_arns) > 0 ? "COGNITO_USER_POOLS" : "NONE"
}

module "api" {
  source = "../lambda-function"

  name         = "${var.name}-api"
  description  = "Upload API: presigned POSTs for uploads; status, list and deletion of images"
  zip_file     = "${local.function_dir}/api.zip"
  handler      = "media_pipeline.handlers.api.lambda_handler"
  runtime      = var.lambda_runtime
  architecture = var.lambda_architecture
  layers       = local.signing_layers
  memory_size  = var.api.memory_size
  timeout      = var.api.timeout
  environment = merge(local.powertools_env, {
    POWERTOOLS_SERVICE_NAME = "api"
    MEDIA_TABLE             = aws_dynamodb_table.media.name
    UPLOADS_BUCKET          = module.uploads_bucket.name
    UPLOAD_PREFIX           = var.upload_prefix
    RENDITIONS_BUCKET       = module.renditions_bucket.name
    DELETED_TTL_SECONDS     = tostring(var.deleted_retention_days * 86400)
    MAX_UPLOAD_BYTES        = tostring(var.max_upload_bytes)
    UPLOAD_EXPIRY_SECONDS   = tostring(var.api.upload_expiry_seconds)
    DOWNLOAD_EXPIRY_SECONDS = tostring(var.api.download_expiry_seconds)
    CORS_ORIGINS            = join(",", var.cors_allowed_origins)
    THUMBNAIL_QUEUE_URL     = module.thumbnail.queue_url
    DUPLICATES_TABLE        = aws_dynamodb_table.duplicates.name
  }, local.cdn_env, local.cdn_invalidation_env)
  log_retention_days = var.log_retention_days
  tracing_mode       = var.tracing_mode
  kms_key_arn        = var.kms_key_arn
  # Presigned URLs are signed with this role: it needs exactly what the URLs allow.
  policy_statements = concat([
    {
      sid       = "CreateReadAndDeleteMediaItems"
      actions   = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"]
      resources = [aws_dynamodb_table.media.arn]
    },
    {
      sid       = "ListAnAppsImages"
      actions   = ["dynamodb:Query"]
      resources = ["${aws_dynamodb_table.media.arn}/index/listing"]
    },
    {
      # GET /images?duplicate_of= queries an original's links; DELETE removes an image's band
      # items and links (its duplicates' duplicate_of go by UpdateItem on the media table).
      sid       = "ListAndForgetDuplicates"
      actions   = ["dynamodb:Query", "dynamodb:BatchWriteItem"]
      resources = [aws_dynamodb_table.duplicates.arn]
    },
    {
      sid       = "SignAndDeleteUploads"
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = ["${module.uploads_bucket.arn}/${var.upload_prefix}*"]
    },
    {
      sid       = "DeleteRenditions"
      actions   = ["s3:DeleteObject"]
      resources = ["${module.renditions_bucket.arn}/*"]
    },
    {
      sid       = "FindRenditionsOfDeletedImages"
      actions   = ["s3:ListBucket"]
      resources = [module.renditions_bucket.arn]
    },
    {
      # PATCH /images/{id}: the image's renditions job, so that its crops are cut again.
      sid       = "RequeueReframedImages"
      actions   = ["sqs:SendMessage"]
      resources = [module.thumbnail.queue_arn]
    },
    ], local.cdn_enabled ? [] : [{
      # Without a CDN, rendition URLs are presigned GETs of this role.
      sid       = "SignRenditionDownloads"
      actions   = ["s3:GetObject"]
      resources = ["${module.renditions_bucket.arn}/*"]
  }], local.cdn_signing_statements, local.cdn_invalidation_statements, local.kms_statements)
}

resource "aws_api_gateway_rest_api" "api" {
  name           = "${var.name}-api"
  description    = "Upload API of ${var.name} (docs/openapi.yaml)"
  api_key_source = "HEADER"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "uploads" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_rest_api.api.root_resource_id
  path_part   = "uploads"
}

resource "aws_api_gateway_resource" "images" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_rest_api.api.root_resource_id
  path_part   = "images"
}

resource "aws_api_gateway_resource" "image" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_resource.images.id
  path_part   = "{id}"
}

resource "aws_api_gateway_authorizer" "cognito" {
  count         = length(var.api_cognito_user_pool_arns) > 0 ? 1 : 0
  name          = "${var.name}-cognito"
  rest_api_id   = aws_api_gateway_rest_api.api.id
  type          = "COGNITO_USER_POOLS"
  provider_arns = var.api_cognito_user_pool_arns
}

resource "aws_api_gateway_method" "route" {
  # checkov:skip=CKV2_AWS_53: request bodies are validated by the function, field by field, with precise errors
  for_each = local.api_routes

  rest_api_id      = aws_api_gateway_rest_api.api.id
  resource_id      = each.value
  http_method      = "ANY"
  authorization    = local.api_authorization
  authorizer_id    = try(aws_api_gateway_authorizer.cognito[0].id, null)
  api_key_required = true
}

resource "aws_api_gateway_method" "preflight" {
  # checkov:skip=CKV_AWS_59: CORS preflight (OPTIONS) cannot carry credentials; it only answers CORS headers
  # checkov:skip=CKV2_AWS_53: OPTIONS has no body
  for_each = local.api_routes

  rest_api_id      = aws_api_gateway_rest_api.api.id
  resource_id      = each.value
  http_method      = "OPTIONS"
  authorization    = "NONE"
  api_key_required = false
}

resource "aws_api_gateway_integration" "route" {
  for_each = merge(
    { for name, method in aws_api_gateway_method.route : name => method },
    { for name, method in aws_api_gateway_method.preflight : "${name}-preflight" => method },
  )

  rest_api_id             = aws_api_gateway_rest_api.api.id
  resource_id             = each.value.resource_id
  http_method             = each.value.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = module.api.invoke_arn
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowUploadApi"
  action        = "lambda:InvokeFunction"
  function_name = module.api.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.api.execution_arn}/*/*/*"
}

resource "aws_api_gateway_deployment" "api" {
  rest_api_id = aws_api_gateway_rest_api.api.id

  # A new deployment whenever a route changes.
  triggers = {
    routes = sha1(jsonencode([
      [for r in [aws_api_gateway_resource.uploads, aws_api_gateway_resource.images, aws_api_gateway_resource.image] : r.id],
      [for m in values(aws_api_gateway_method.route) : [m.id, m.authorization, m.api_key_required]],
      [for m in values(aws_api_gateway_method.preflight) : m.id],
      [for i in values(aws_api_gateway_integration.route) : [i.id, i.uri]],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "api_access" {
  # checkov:skip=CKV_AWS_158: encrypted with CloudWatch Logs' own key unless kms_key_arn is set
  # checkov:skip=CKV_AWS_338: retention is a variable (log_retention_days)
  name              = "/aws/apigateway/${var.name}-api/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_api_gateway_stage" "api" {
  # checkov:skip=CKV_AWS_120: responses are per request (presigned URLs); caching would serve stale ones
  # checkov:skip=CKV2_AWS_51: clients authenticate with API keys or Cognito tokens, not client certificates
  # checkov:skip=CKV2_AWS_4: the logging level is set by aws_api_gateway_method_settings.api (var.api.logging_level, default ERROR), which checkov cannot resolve
  # checkov:skip=CKV2_AWS_29: a WAF web ACL is deployment-specific; attach one with aws_wafv2_web_acl_association
  rest_api_id          = aws_api_gateway_rest_api.api.id
  deployment_id        = aws_api_gateway_deployment.api.id
  stage_name           = var.api.stage_name
  xray_tracing_enabled = var.tracing_mode == "Active"

  # Logging needs the account's CloudWatch role first.
  depends_on = [aws_api_gateway_account.this]

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId    = "$context.requestId"
      ip           = "$context.identity.sourceIp"
      apiKeyId     = "$context.identity.apiKeyId"
      method       = "$context.httpMethod"
      path         = "$context.path"
      status       = "$context.status"
      latencyMs    = "$context.responseLatency"
      integration  = "$context.integration.status"
      responseSize = "$context.responseLength"
    })
  }
}

resource "aws_api_gateway_method_settings" "api" {
  # checkov:skip=CKV_AWS_225: no response cache: responses carry fresh presigned URLs
  # checkov:skip=CKV_AWS_308: no response cache, so nothing cached to encrypt
  rest_api_id = aws_api_gateway_rest_api.api.id
  stage_name  = aws_api_gateway_stage.api.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = var.api.logging_level
    throttling_rate_limit  = var.api.throttle_rate_limit
    throttling_burst_limit = var.api.throttle_burst_limit
  }
}

resource "aws_api_gateway_api_key" "default" {
  name        = "${var.name}-default"
  description = "Key of the first app (more keys can join the usage plan)"
}

resource "aws_api_gateway_usage_plan" "api" {
  name        = "${var.name}-api"
  description = "Throttle and quota of every key of the upload API"

  api_stages {
    api_id = aws_api_gateway_rest_api.api.id
    stage  = aws_api_gateway_stage.api.stage_name
  }

  throttle_settings {
    rate_limit  = var.api.throttle_rate_limit
    burst_limit = var.api.throttle_burst_limit
  }

  quota_settings {
    limit  = var.api.quota_limit
    period = var.api.quota_period
  }
}

resource "aws_api_gateway_usage_plan_key" "default" {
  key_id        = aws_api_gateway_api_key.default.id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.api.id
}

# API Gateway writes access and execution logs with one role per account and region.
data "aws_iam_policy_document" "api_gateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "api_gateway_logs" {
  count              = var.api.manage_account_logging_role ? 1 : 0
  name               = "${var.name}-apigateway-logs"
  assume_role_policy = data.aws_iam_policy_document.api_gateway_assume.json
}

# What AWS's managed policy AmazonAPIGatewayPushToCloudWatchLogs grants, inline (the emulators
# do not all know that policy), limited to this account and region.
data "aws_iam_policy_document" "api_gateway_logs" {
  statement {
    sid = "WriteApiGatewayLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DescribeLogGroups",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
      "logs:GetLogEvents",
      "logs:FilterLogEvents",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:*"]
  }
}

resource "aws_iam_role_policy" "api_gateway_logs" {
  count  = var.api.manage_account_logging_role ? 1 : 0
  name   = "${var.name}-apigateway-logs"
  role   = aws_iam_role.api_gateway_logs[0].id
  policy = data.aws_iam_policy_document.api_gateway_logs.json
}

resource "aws_api_gateway_account" "this" {
  count               = var.api.manage_account_logging_role ? 1 : 0
  cloudwatch_role_arn = aws_iam_role.api_gateway_logs[0].arn
  depends_on          = [aws_iam_role_policy.api_gateway_logs]
}
