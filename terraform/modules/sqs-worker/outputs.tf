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
  value       = module.queue.arn
}

output "queue_url" {
  description = "URL of the jobs queue."
  value       = module.queue.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = module.queue.dlq_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.queue.dlq_url
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs queue (6x the function timeout plus the batching window)."
  value       = local.visibility_timeout
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = module.queue.dlq_name
}

output "queue_name" {
  description = "Name of the jobs queue."
  value       = module.queue.name
}
