# What only a throwaway stack on an emulator sets: terraform/envs/local passes these, the
# production root (terraform/envs/aws) does not even declare them, so a deployment cannot turn
# them on by a stray line in its tfvars.

variable "disposable" {
  description = "A throwaway stack (local emulator, CI): buckets are emptied and tables deleted on destroy. terraform/envs/local sets it; production keeps the default (false)."
  type        = bool
  default     = false
}

variable "bundle_layers" {
  description = "Deploy each function from build/<runtime>-<architecture>/bundled/ (make bundle: its layers' contents inside its zip) and publish no layers. For a Lambda that does not apply layers, such as LocalStack's community edition (make localstack-up sets it); AWS uses layers (false)."
  type        = bool
  default     = false
}

variable "cdn_edge_url" {
  description = "Where an emulator serves CloudFront distributions: rendition URLs become <cdn_edge_url>/<distribution domain>/<key> (the embedded stack's edge). terraform/envs/local sets it; on AWS the distribution's own domain is used."
  type        = string
  default     = null
}
