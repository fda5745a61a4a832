"""Architecture files: the toy Twitter's topology as data, and the per-process current version.

An architecture file says which replicas and backends exist, how requests are routed, and the
timeouts, retries, rate limits and capacities in force. Every process holds its own current
architecture, so a rollout can move replicas to a new version one wave at a time.
"""

from services.architecture.model import (
    Architecture,
    ArchitectureState,
    load_architecture,
    parse_architecture,
)

__all__ = ["Architecture", "ArchitectureState", "load_architecture", "parse_architecture"]
