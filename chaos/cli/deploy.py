"""``failwhale k8s``: write the Kubernetes base (deploy/k8s/) from the lab config and the architecture, or check it."""

from __future__ import annotations

import argparse

from chaos.cli.common import say
from chaos.lab import k8s


def cmd_k8s(args: argparse.Namespace) -> int:
    """Write the base into ``--out`` (and its control token, once), or with ``--check`` compare:
    exit code 1 and the files that differ when it is not what a fresh build gives."""
    files = k8s.build()
    out = args.out
    if args.check:
        problems = k8s.stale(out, files)
        if problems:
            again = "failwhale k8s" + ("" if out == k8s.OUT else f" --out {out}")
            say(f"{out} is not what `failwhale k8s` builds now; run `{again}`:")
            for problem in problems:
                say(f"  {problem}")
            return 1
        say(f"{out} is what `failwhale k8s` builds ({len(files)} files)")
        return 0
    written, removed = k8s.write(out, files)
    say(f"{out}: {len(files)} files, {len(written)} written" + (f", removed {', '.join(removed)}" if removed else ""))
    token = out / k8s.TOKEN_FILE
    if k8s.ensure_token(out):
        say(f"made the control token {token} (mode 0600, git-ignored): the Secret kustomize builds from it")
    else:
        say(f"kept the control token {token}")
    return 0
