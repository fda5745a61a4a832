"""The service skeleton shared by every failwhale service: app factory, metrics, errors, config loading."""
