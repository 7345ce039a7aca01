variable "name" {
  description = "Function name; also names its role and log group."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "name must be 1-64 letters, digits, hyphens or underscores (a Lambda function name)."
  }
}

variable "description" {
  description = "What the function does, shown in the console."
  type        = string
  default     = ""
}

variable "zip_file" {
  description = "Path of the deployment package built by `make build` (project code only; dependencies come from layers)."
  type        = string
}

variable "handler" {
  description = "Python handler, module.function."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime identifier, e.g. python3.13."
  type        = string
  validation {
    condition     = can(regex("^python3\\.[0-9]+$", var.runtime))
    error_message = "runtime must be a Python runtime such as python3.13."
  }
}

variable "architecture" {
  description = "Instruction set: arm64 or x86_64. Layers must be built for the same one."
  type        = string
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "layers" {
  description = "Layer version ARNs, in order (later layers overwrite earlier files in /opt)."
  type        = list(string)
  default     = []
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; null for the account's unreserved pool."
  type        = number
  default     = null
}

variable "policy_statements" {
  description = "The function's own permissions beyond writing its logs and traces: one entry per statement, with actions and resource ARNs named exactly (no wildcards where an ARN is known)."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
  }))
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days."
  type        = number
}

variable "tracing_mode" {
  description = "X-Ray tracing: Active or PassThrough."
  type        = string
  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the function's environment and log group. null: AWS-managed encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of the function."
  type        = map(string)
  default     = {}
}
