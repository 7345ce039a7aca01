variable "name" {
  description = "Name of the queue (its DLQ is <name>-dlq unless dead_letter.name says otherwise)."
  type        = string
}

variable "retention_seconds" {
  description = "Retention of messages in the queue (60 s to 14 days)."
  type        = number
  default     = 345600
  validation {
    condition     = var.retention_seconds >= 60 && var.retention_seconds <= 1209600
    error_message = "retention_seconds must be between 60 and 1209600."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue (for a Lambda consumer: at least 6x its timeout)."
  type        = number
  default     = 30
}

variable "dead_letter" {
  description = "A dead-letter queue: whether to create one, its name, how often a message is received before it moves there, and its retention (14 days by default: time to notice and redrive). Only this queue may redrive into it."
  type = object({
    enabled           = optional(bool, false)
    name              = optional(string)
    max_receive_count = optional(number, 5)
    retention_seconds = optional(number, 1209600)
  })
  default  = {}
  nullable = false
  validation {
    condition     = var.dead_letter.max_receive_count >= 1 && var.dead_letter.max_receive_count <= 1000
    error_message = "dead_letter.max_receive_count must be between 1 and 1000."
  }
  validation {
    condition     = var.dead_letter.retention_seconds >= 60 && var.dead_letter.retention_seconds <= 1209600
    error_message = "dead_letter.retention_seconds must be between 60 and 1209600."
  }
}

variable "sender" {
  description = "Who may send to the queue through its resource policy: an AWS service principal and the exact source ARNs (checked with aws:SourceArn), and the statement's Sid. null: no resource policy (senders need IAM permissions of their own)."
  type = object({
    service     = string
    source_arns = list(string)
    sid         = optional(string, "AllowOnlyTheConfiguredSender")
  })
  default = null
}

variable "depth_alarm" {
  description = "An alarm as soon as the queue that holds given-up messages (the DLQ, or this queue when it has none) is not empty; description says what such a message means."
  type = object({
    enabled     = optional(bool, true)
    description = optional(string, "something was given up on.")
  })
  default  = {}
  nullable = false
}

variable "alarm_actions" {
  description = "ARNs notified when the depth alarm fires and clears (e.g. an SNS topic)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the queues. null: SQS-managed encryption (SSE-SQS)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of the queue."
  type        = map(string)
  default     = {}
}
