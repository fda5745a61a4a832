"""The toy Twitter that failwhale breaks: a web frontend, an edge balancer, API replicas and backends.

Every service is its own OS process built on the shared skeleton in :mod:`services.common`.
Start one with ``python -m services KIND --instance NAME``; start them all with ``failwhale up``.
"""
