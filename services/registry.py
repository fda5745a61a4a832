"""Which app factory runs each kind of process."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from services.common.app import ServiceContext


def factory(kind: str) -> Callable[[ServiceContext], web.Application]:
    # Imported on demand so starting one service does not import every other one.
    if kind == "web":
        from services.web.app import create_app
    elif kind == "edge":
        from services.edge.app import create_app
    elif kind == "api":
        from services.api.app import create_app
    elif kind == "auth":
        from services.auth.app import create_app
    elif kind == "timeline":
        from services.timeline.app import create_app
    elif kind == "tweets":
        from services.tweets.app import create_app
    elif kind == "notifications":
        from services.notifications.app import create_app
    else:
        raise ValueError(f"unknown service kind {kind!r}")
    return create_app


def build_app(instance: str, lab, architecture) -> web.Application:
    """The app for ``instance`` as the architecture declares it, with the lab's control token."""
    from services.architecture.model import ArchitectureState
    from services.common.app import read_token

    kinds = architecture.instance_kinds()
    if instance not in kinds:
        raise KeyError(instance)
    ctx = ServiceContext(
        instance=instance,
        kind=kinds[instance],
        lab=lab,
        architecture=ArchitectureState(architecture),
        control_token=read_token(lab.token_path),
    )
    return factory(ctx.kind)(ctx)
