# The emulator root is the production root (terraform/envs/aws) plus the files of this
# directory, staged together by scripts/tooling/terraform.py (terraform.emulator_root): the
# embedded stack (make up, the e2e tests) and LocalStack (make localstack-up) apply it with
# terraform/envs/local.tfvars. Nothing here can reach production: the production root does not
# have these files, and make plan / make deploy never stage them.
#
# Terraform merges each *_override.tf into the block of the same name:
#   provider_override.tf  points every AWS API at aws_endpoint_url and skips the checks an
#                         emulator cannot answer (plan-check and the deployment tests use it
#                         alone, to plan the production root against an emulator);
#   pipeline_override.tf  makes the stack disposable and passes the emulator inputs.
# What an emulator alone needs is declared here.

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
