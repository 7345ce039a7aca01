"""The embedded local stack: moto plus a local Lambda runtime that runs what Terraform created."""
