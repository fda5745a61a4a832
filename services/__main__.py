"""Run one failwhale service process: ``python -m services --instance api-1``.

The supervisor (``failwhale up``) starts one of these per instance; you rarely need it by hand.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from configfiles.errors import ConfigError
from services.architecture import load_architecture
from services.common.app import OneLineAborts, serve
from services.config import DEFAULT_LAB_CONFIG, load_lab_config
from services.registry import build_app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services", description=__doc__.splitlines()[0])
    p.add_argument("--instance", required=True, help="instance name from the architecture file, e.g. api-1")
    p.add_argument(
        "--lab-config", type=Path, default=DEFAULT_LAB_CONFIG, help="lab config with the ports (default: %(default)s)"
    )
    p.add_argument("--architecture", type=Path, help="architecture file to start with (default: the lab config's)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.instance} %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(OneLineAborts())
    try:
        lab = load_lab_config(args.lab_config)
        arch = load_architecture(args.architecture or lab.architecture_path)
        if args.instance not in lab.ports:
            raise ConfigError(f"{args.lab_config}: ports: no port for instance {args.instance!r}")
        app = build_app(args.instance, lab, arch)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyError:
        print(f"error: the architecture has no instance named {args.instance!r}", file=sys.stderr)
        return 2
    return serve(app, lab.listen_host(args.instance), lab.port(args.instance), args.instance)


if __name__ == "__main__":
    sys.exit(main())
