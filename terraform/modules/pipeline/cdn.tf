# Serving renditions: CloudFront in front of the renditions bucket (docs/deploy.md, "The CDN").
#
# The bucket stays private: only this distribution reads it, through Origin Access Control. By
# default URLs are signed (a key group of the public keys in var.cdn.public_keys; the private
# key of var.cdn.signing_key lives in SSM Parameter Store, written by scripts/cdn_keys.py, never
# in this state). Renditions never change under a key (the key carries the source ETag and the
# settings' fingerprint): the cache keeps them a year and the query string (the signature) is not
# part of the cache key. Off with cdn.enabled = false: the API then hands out S3 presigned GETs.

locals {
  cdn_enabled = var.cdn.enabled
  cdn_private = var.cdn.enabled && var.cdn.private
  # Where the API and the notifier point rendition URLs. An emulator serves the distribution
  # under its own endpoint (var.cdn_edge_url, set by terraform/envs/local only).
  cdn_url = !local.cdn_enabled ? null : (
    var.cdn_edge_url != null ? "${var.cdn_edge_url}/${aws_cloudfront_distribution.renditions[0].domain_name}"
    : "https://${coalesce(var.cdn.domain_name, aws_cloudfront_distribution.renditions[0].domain_name)}"
  )
  cdn_key_parameter = local.cdn_private ? "/${var.name}/cdn/signing-keys/${var.cdn.signing_key}" : null
  cdn_env = !local.cdn_enabled ? {} : merge(
    {
      CDN_URL                = local.cdn_url
      CDN_URL_WINDOW_SECONDS = tostring(var.cdn.url_window_seconds)
    },
    local.cdn_private ? {
      CDN_KEY_PAIR_ID           = aws_cloudfront_public_key.signing[var.cdn.signing_key].id
      CDN_PRIVATE_KEY_PARAMETER = local.cdn_key_parameter
    } : {},
  )
  # The API and the notifier sign URLs with the key in SSM.
  cdn_signing_statements = !local.cdn_private ? [] : [{
    sid       = "ReadTheUrlSigningKey"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${local.cdn_key_parameter}"]
  }]
  # Deleting an image also drops its renditions from the edge caches.
  cdn_invalidation_env = !local.cdn_enabled ? {} : {
    CDN_DISTRIBUTION_ID = aws_cloudfront_distribution.renditions[0].id
  }
  cdn_invalidation_statements = !local.cdn_enabled ? [] : [{
    sid       = "DropDeletedImagesFromTheCdn"
    actions   = ["cloudfront:CreateInvalidation"]
    resources = [aws_cloudfront_distribution.renditions[0].arn]
  }]
}

resource "aws_cloudfront_origin_access_control" "renditions" {
  count                             = local.cdn_enabled ? 1 : 0
  name                              = "${var.name}-renditions"
  description                       = "CloudFront reads the renditions bucket, signing its requests"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_cache_policy" "renditions" {
  count       = local.cdn_enabled ? 1 : 0
  name        = "${var.name}-renditions"
  comment     = "Immutable renditions: a year at the edge; nothing but the path in the cache key"
  min_ttl     = 86400
  default_ttl = 31536000
  max_ttl     = 31536000

  parameters_in_cache_key_and_forwarded_to_origin {
    # Images are already compressed: no gzip or brotli variants to keep apart.
    enable_accept_encoding_gzip   = false
    enable_accept_encoding_brotli = false
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      # A signed URL's Policy, Signature and Key-Pair-Id are checked by CloudFront, not cached.
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_public_key" "signing" {
  for_each    = local.cdn_private ? var.cdn.public_keys : {}
  name        = "${var.name}-${each.key}"
  comment     = "Verifies rendition URLs signed with the private key ${each.key} (SSM /${var.name}/cdn/signing-keys/${each.key})"
  encoded_key = each.value
}

resource "aws_cloudfront_key_group" "signing" {
  count   = local.cdn_private ? 1 : 0
  name    = "${var.name}-renditions"
  comment = "Keys whose signatures open the renditions"
  items   = [for key in aws_cloudfront_public_key.signing : key.id]
}

resource "aws_cloudfront_distribution" "renditions" {
  # checkov:skip=CKV_AWS_68: no WAF by default: signed URLs of immutable images from a private bucket, no application behind it; cdn.web_acl_id attaches one.
  # checkov:skip=CKV_AWS_86: access logs only when cdn.logging_bucket names a log bucket (a deployment's choice: they are per request).
  # checkov:skip=CKV_AWS_174: with CloudFront's own certificate (no cdn.domain_name) the minimum protocol cannot be chosen; with a certificate it is TLSv1.2_2021.
  # checkov:skip=CKV_AWS_310: one origin, a private S3 bucket in one region: no second origin to fail over to.
  # checkov:skip=CKV_AWS_374: no geo restriction by default: a deployment adds one if it must.
  # checkov:skip=CKV_AWS_305: no default root object: objects are served by their keys, never a root page.
  # checkov:skip=CKV2_AWS_47: no WAF (CKV_AWS_68), so no Log4j rule group to attach.
  # checkov:skip=CKV2_AWS_32: a response headers policy is attached: AWS's managed SecurityHeadersPolicy, by its id (local.security_headers_policy_id); the check looks for a policy resource of this configuration.
  count           = local.cdn_enabled ? 1 : 0
  enabled         = true
  comment         = "${var.name}: renditions"
  is_ipv6_enabled = true
  http_version    = "http2and3"
  price_class     = var.cdn.price_class
  aliases         = var.cdn.domain_name == null ? [] : [var.cdn.domain_name]
  web_acl_id      = var.cdn.web_acl_id

  origin {
    origin_id                = "renditions"
    domain_name              = module.renditions_bucket.regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.renditions[0].id
  }

  default_cache_behavior {
    target_origin_id           = "renditions"
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.renditions[0].id
    response_headers_policy_id = local.security_headers_policy_id
    compress                   = false
    trusted_key_groups         = local.cdn_private ? [aws_cloudfront_key_group.signing[0].id] : []
  }

  dynamic "logging_config" {
    for_each = var.cdn.logging_bucket == null ? [] : [var.cdn.logging_bucket]
    content {
      bucket          = logging_config.value
      include_cookies = false
      prefix          = "${var.name}/cdn/"
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.cdn.domain_name == null
    acm_certificate_arn            = var.cdn.certificate_arn
    ssl_support_method             = var.cdn.domain_name == null ? null : "sni-only"
    minimum_protocol_version       = var.cdn.domain_name == null ? "TLSv1" : "TLSv1.2_2021"
  }
}

locals {
  # AWS's managed "SecurityHeadersPolicy" (HSTS, nosniff, frame options, XSS protection,
  # referrer policy): an ID every account has, no resource of ours.
  security_headers_policy_id = "67f7725c-6f97-4210-82d7-5512b31e9d03"
}
