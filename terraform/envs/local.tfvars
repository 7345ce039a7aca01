# The embedded local stack (`make up`, `make demo`, the e2e tests). scripts/devstack sets
# aws_endpoint_url, region, lambda_runtime and lambda_architecture (the host's Python and CPU).

name       = "media-pipeline"
disposable = true

# Short timeouts keep the retry clock (visibility timeout = 6x timeout) fast on a laptop:
# a job that keeps failing moves to its DLQ after max_receive_count x 30 s.
max_receive_count = 3
workers = {
  thumbnail = { timeout = 5, batch_size = 5, maximum_concurrency = 2 }
  metadata  = { timeout = 5, batch_size = 5, maximum_concurrency = 2 }
}
notifier = {
  timeout                = 10
  maximum_retry_attempts = 3
}

log_retention_days = 1
