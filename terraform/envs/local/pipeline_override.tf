# Merged into the module call of terraform/envs/aws/main.tf, which passes every other variable
# through; see emulator.tf.
module "pipeline" {
  # checkov:skip=CKV_TF_1: an override of the call in terraform/envs/aws/main.tf, whose source is a local path: it names no source of its own.
  # checkov:skip=CKV_TF_2: as CKV_TF_1: no source here, the call's is a local path.
  # A throwaway stack: buckets are emptied and tables deleted on destroy (no deletion protection).
  disposable = true
  # LocalStack community does not apply layers: each function's layers go inside its zip.
  bundle_layers = var.bundle_layers
  # The embedded stack serves the CDN's URLs itself (scripts/devstack/edge.py).
  cdn_edge_url = var.cdn_edge_url
}
