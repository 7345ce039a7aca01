# An emulator (moto server, LocalStack) answers every service on one URL, with fixed test
# credentials and no instance metadata: none of this belongs in terraform/envs/aws.
provider "aws" {
  region = var.region

  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_metadata_api_check     = true

  endpoints {
    apigateway = var.aws_endpoint_url
    cloudfront = var.aws_endpoint_url
    cloudwatch = var.aws_endpoint_url
    dynamodb   = var.aws_endpoint_url
    events     = var.aws_endpoint_url
    iam        = var.aws_endpoint_url
    kms        = var.aws_endpoint_url
    lambda     = var.aws_endpoint_url
    logs       = var.aws_endpoint_url
    s3         = var.aws_endpoint_url
    sns        = var.aws_endpoint_url
    sqs        = var.aws_endpoint_url
    sts        = var.aws_endpoint_url
  }

  default_tags {
    tags = merge({ Project = var.name, ManagedBy = "terraform" }, var.tags)
  }
}

variable "aws_endpoint_url" {
  description = "One URL serving every AWS API: the emulator's (scripts/devstack sets it for the embedded stack and LocalStack)."
  type        = string
  validation {
    condition     = can(regex("^https?://", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be an http(s) URL."
  }
}

variable "cdn_edge_url" {
  description = "Where the emulator serves CloudFront distributions (the embedded stack's edge, <endpoint>/_edge); null where it serves none (LocalStack community: set cdn.enabled = false)."
  type        = string
  default     = null
}

variable "bundle_layers" {
  description = "Deploy each function with its layers' contents inside its zip (make bundle) and publish no layers: for a Lambda that does not apply layers, such as LocalStack's community edition (make localstack-up sets it)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
