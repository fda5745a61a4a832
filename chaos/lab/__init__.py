"""Running the lab: provisioning tools, generating Prometheus's config, supervising processes."""
