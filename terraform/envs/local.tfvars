# The embedded local stack (`make up`, `make demo`, `make load`, the e2e tests) and LocalStack:
# variables of terraform/envs/local, which is disposable by itself. scripts/devstack sets
# aws_endpoint_url, region, lambda_runtime and lambda_architecture (the host's Python/CPU).

name = "media-pipeline"

# Sized from `make load` on 2 shared cores (docs/operations.md, "Sizing"): a batch must fit its
# timeout with room to spare under a burst, or the runtime kills it and every record in it comes
# back. Workers also give back records they cannot finish in time. Short-ish timeouts keep the
# retry clock (visibility timeout = 6x timeout) fast on a laptop: a job that keeps failing moves
# to its DLQ after max_receive_count x 6 x timeout.
max_receive_count = 3
# A transient failure is retried after ~2 s, then ~4 s (the visibility timeout is the ceiling).
retry_base_seconds = 2
workers = {
  thumbnail = { timeout = 10, batch_size = 1, maximum_concurrency = 2 }
  metadata  = { timeout = 10, batch_size = 5, maximum_concurrency = 2 }
}
notifier = {
  timeout                = 10
  maximum_retry_attempts = 3
}
reconciler = {
  schedule = "rate(1 minute)"
}

log_retention_days = 1

# Renditions in WebP too, so that the browser test sees a <picture> choose a modern format.
# AVIF as well costs ~0.2 s of encoding per large rendition: the production example has it.
extra_formats = ["WEBP"]

# One cropped rendition, so that the demo, the browser page and the e2e tests see a crop placed
# around the point of interest and moved by PATCH /images/{id} (docs/events.md, "Crops").
cropped_renditions = {
  square = { edge = 256, aspect = "1x1" }
}
