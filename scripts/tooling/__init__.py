"""What production tooling needs, without the local stack: Terraform, Python runtimes, the
upload API's client. ``devstack`` (the local stack) builds on it; never the other way round."""
