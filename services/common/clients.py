"""Which kind of client sent a request: ``web``, ``app`` or ``other``.

This is for measurement only. Services label their metrics with it so Prometheus can split
web from app impact; no service may behave differently because of it.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import istr

CLIENT_HEADER = "X-Client"
# Case-insensitive keys made once: a plain str is case-folded on every lookup.
_CLIENT_KEY, _AGENT_KEY = istr(CLIENT_HEADER), istr("User-Agent")
CLIENT_CLASSES = ("web", "app", "other")

# The mobile apps announce themselves in their User-Agent, as the real ones do.
_APP_AGENTS = ("TwitterAndroid/", "Twitter-iPhone/")


def client_class(headers: Mapping[str, str]) -> str:
    """Classify from the explicit header, else from the User-Agent (browsers send ``Mozilla/``)."""
    declared = headers.get(_CLIENT_KEY)
    if declared == "web" or declared == "app":
        return declared
    agent = headers.get(_AGENT_KEY, "")
    if agent.startswith("Mozilla/"):
        return "web"
    if agent.startswith(_APP_AGENTS):
        return "app"
    return "other"
