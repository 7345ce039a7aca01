variable "name" {
  description = "Name of the worker: names its function, queue (<name>-jobs) and DLQ (<name>-dlq)."
  type        = string
}

variable "description" {
  description = "What the worker does."
  type        = string
  default     = ""
}

variable "function" {
  description = "The Lambda function: deployment package, handler, runtime, architecture, layers, memory (MB), timeout (s), environment, its own permission statements, and optional reserved concurrency. MAX_RECEIVE_COUNT is added to its environment."
  type = object({
    zip_file             = string
    handler              = string
    runtime              = string
    architecture         = string
    layers               = list(string)
    memory_size          = number
    timeout              = number
    environment          = map(string)
    reserved_concurrency = optional(number)
    policy_statements = list(object({
      sid       = string
      actions   = list(string)
      resources = list(string)
    }))
  })
}

variable "sender" {
  description = "Who may send to the queue: an AWS service principal and the exact source ARNs (checked with aws:SourceArn)."
  type = object({
    service     = string
    source_arns = list(string)
  })
}

variable "batch_size" {
  description = "Records per invocation (1-10000; above 10 needs a batching window)."
  type        = number
  default     = 10
  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "batching_window_seconds" {
  description = "How long the event source mapping may wait to fill a batch (0-300 s)."
  type        = number
  default     = 0
  validation {
    condition     = var.batching_window_seconds >= 0 && var.batching_window_seconds <= 300
    error_message = "batching_window_seconds must be between 0 and 300."
  }
  validation {
    condition     = var.batch_size <= 10 || var.batching_window_seconds >= 1
    error_message = "A batch_size above 10 needs batching_window_seconds of at least 1 (an SQS rule)."
  }
}

variable "maximum_concurrency" {
  description = "Upper bound on concurrent invocations driven by the queue (2-1000). Null: none but Lambda's own (up to 1,250 per mapping in standard mode, and the account's concurrency)."
  type        = number
  default     = null
  validation {
    condition     = var.maximum_concurrency == null || try(var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000, false)
    error_message = "maximum_concurrency must be null or between 2 and 1000."
  }
}

variable "provisioned_pollers" {
  description = "Provisioned mode for the queue's event source mapping: dedicated event pollers, between minimum (2-200) and maximum (2-2000). AWS documents it as up to 16 times the capacity of standard mode (1,250 concurrent invocations per mapping) and bills it per poller. Null: standard mode. Not with maximum_concurrency (AWS refuses both)."
  type = object({
    minimum = number
    maximum = number
  })
  default = null
  validation {
    condition = var.provisioned_pollers == null || try(
      var.provisioned_pollers.minimum >= 2 && var.provisioned_pollers.minimum <= 200 &&
      var.provisioned_pollers.maximum >= var.provisioned_pollers.minimum &&
      var.provisioned_pollers.maximum <= 2000,
    false)
    error_message = "provisioned_pollers needs 2 <= minimum <= maximum, minimum <= 200 and maximum <= 2000."
  }
  validation {
    condition     = var.provisioned_pollers == null || var.maximum_concurrency == null
    error_message = "provisioned_pollers and maximum_concurrency cannot both be set (AWS refuses the combination)."
  }
}

variable "retry_base_seconds" {
  description = "First retry delay of a transiently failed job (doubles per delivery, capped at the visibility timeout); JOBS_QUEUE_URL, RETRY_BASE_SECONDS and RETRY_MAX_SECONDS are added to the function's environment."
  type        = number
  default     = 10
}

variable "max_receive_count" {
  description = "Deliveries of a message before it moves to the DLQ."
  type        = number
  default     = 5
  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "message_retention_seconds" {
  description = "Retention of messages in the jobs queue."
  type        = number
  default     = 345600
}

variable "dlq_retention_seconds" {
  description = "Retention of messages in the DLQ (the SQS maximum, 14 days, by default: time to notice and redrive)."
  type        = number
  default     = 1209600
  validation {
    condition     = var.dlq_retention_seconds >= 60 && var.dlq_retention_seconds <= 1209600
    error_message = "dlq_retention_seconds must be between 60 and 1209600."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when the DLQ holds messages (e.g. an SNS topic)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the function's logs, in days."
  type        = number
}

variable "tracing_mode" {
  description = "X-Ray tracing of the function: Active or PassThrough."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the queues. null: SQS-managed encryption (SSE-SQS)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of the worker."
  type        = map(string)
  default     = {}
}
