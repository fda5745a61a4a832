"""Serve the built-in live dashboard: ``python -m dashboards [--lab-config FILE]``.

`failwhale up` and `failwhale run` start this beside the lab; it reads the lab's Prometheus.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from configfiles.errors import ConfigError
from dashboards.app import DashboardConfig, create_app
from dashboards.errors import DashboardError
from dashboards.spec import load_spec
from services.common.app import serve
from services.config import DEFAULT_LAB_CONFIG, load_lab_config

PORT_NAME = "dashboard"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__.splitlines()[0])
    p.add_argument(
        "--lab-config", type=Path, default=DEFAULT_LAB_CONFIG, help="lab config with the ports (default: %(default)s)"
    )
    args = p.parse_args(argv)
    try:
        lab = load_lab_config(args.lab_config)
        spec = load_spec()
        if PORT_NAME not in lab.ports:
            raise ConfigError(f"{args.lab_config}: ports: no port for {PORT_NAME!r}")
    except (ConfigError, DashboardError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app = create_app(
        DashboardConfig(
            prometheus_url=lab.url("prometheus"), spec=spec, address=(lab.host_of(PORT_NAME), lab.port(PORT_NAME))
        )
    )
    return serve(app, lab.listen_host(PORT_NAME), lab.port(PORT_NAME), "the dashboard")


if __name__ == "__main__":
    sys.exit(main())
