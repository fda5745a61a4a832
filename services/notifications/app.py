"""Notifications backend app: a deterministic feed per user (guests get an empty one)."""

from __future__ import annotations

import time
import zlib

from aiohttp import web

from services.common.app import CONTEXT, ServiceContext, create_service_app
from services.common.jsonbody import json_response

KINDS = ("like", "follow", "retweet", "mention")


async def notifications(request: web.Request) -> web.Response:
    user = request.headers.get("X-User", "guest")
    if user == "guest":
        return json_response({"user": None, "notifications": []})
    ctx = request.app[CONTEXT]
    size = ctx.arch.backend(ctx.instance).page_size
    seed = zlib.crc32(user.encode())
    now = time.time()
    items = [
        {
            "id": f"{seed:x}-{i}",
            "kind": KINDS[(seed + i) % len(KINDS)],
            "from": f"user{(seed + 31 * i) % 5000 + 1:04d}",
            "at": now - 90 * i,
        }
        for i in range(seed % size + 1)
    ]
    return json_response({"user": user, "notifications": items})


def create_app(ctx: ServiceContext) -> web.Application:
    return create_service_app(ctx, [web.get("/internal/notifications", notifications)])
