"""A password on Locust's web UI, so that no other page in the operator's browser can drive the load.

Locust's UI starts and retargets a load with a plain form POST (``/swarm`` takes ``host=`` and a
user count), so any web page the operator visits could otherwise point the load generator at a
third party. With ``--ui-secret-file``, every UI request needs HTTP basic auth with user
``failwhale`` and the secret that file holds (``failwhale up`` writes a new one, readable only by
its owner, at every start); without it, every request is refused. Only the UI is guarded: the
journey metrics Prometheus scrapes are served on their own port.
"""

from __future__ import annotations

import hmac
from pathlib import Path

USER = "failwhale"
REALM = "failwhale load generator"


def read_secret(path: str) -> str | None:
    """The secret in ``path``, or None (no file, or empty): then the UI refuses everyone."""
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return secret or None


def allowed(authorization: object, secret: str | None) -> bool:
    """Does a request's parsed basic auth (werkzeug's ``request.authorization``) match?"""
    if secret is None or authorization is None:
        return False
    username = getattr(authorization, "username", None) or ""
    password = getattr(authorization, "password", None) or ""
    return hmac.compare_digest(username.encode(), USER.encode()) and hmac.compare_digest(
        password.encode(), secret.encode()
    )


def guard(app, secret_file: str) -> None:
    """Require the secret on every request to the Flask ``app`` of Locust's web UI."""
    from flask import Response, request

    secret = read_secret(secret_file)

    @app.before_request
    def _require_secret():
        if allowed(request.authorization, secret):
            return None
        return Response(
            "Locust's UI needs user failwhale and the password in the lab's locust-ui.secret\n",
            401,
            {"WWW-Authenticate": f'Basic realm="{REALM}"', "Content-Type": "text/plain; charset=utf-8"},
        )
