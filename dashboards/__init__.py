"""failwhale's dashboards and alerts: one panel spec, the Prometheus rules, Grafana JSON and the
built-in live dashboard that `failwhale up` serves."""
