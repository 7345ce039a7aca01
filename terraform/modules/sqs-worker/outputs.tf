output "function_name" {
  description = "Name of the worker's Lambda function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the worker's Lambda function."
  value       = module.function.function_arn
}

output "role_name" {
  description = "Name of the worker's execution role."
  value       = module.function.role_name
}

output "queue_arn" {
  description = "ARN of the jobs queue (an EventBridge target)."
  value       = aws_sqs_queue.jobs.arn
}

output "queue_url" {
  description = "URL of the jobs queue."
  value       = aws_sqs_queue.jobs.id
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.id
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs queue (6x the function timeout plus the batching window)."
  value       = local.visibility_timeout
}
