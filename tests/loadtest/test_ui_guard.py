"""The password on Locust's web UI: no page the operator happens to visit can start or retarget the load."""

from __future__ import annotations

import base64

import pytest
from flask import Flask

from loadtest import ui_guard


def ui(tmp_path, secret: str | None) -> Flask:
    app = Flask("locust-ui")

    @app.route("/swarm", methods=["POST"])
    def swarm():
        return "swarming"

    path = tmp_path / "locust-ui.secret"
    if secret is not None:
        path.write_text(secret + "\n")
    ui_guard.guard(app, str(path))
    return app


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_ui_answers_only_with_the_lab_password(tmp_path):
    client = ui(tmp_path, "s3cret").test_client()
    form = {"user_count": "5000", "spawn_rate": "100", "host": "http://third-party.example"}
    refused = client.post("/swarm", data=form)  # what a cross-site form POST sends: no credentials
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert client.post("/swarm", data=form, headers=basic("failwhale", "wrong")).status_code == 401
    assert client.post("/swarm", data=form, headers=basic("admin", "s3cret")).status_code == 401
    ok = client.post("/swarm", data=form, headers=basic("failwhale", "s3cret"))
    assert ok.status_code == 200 and ok.data == b"swarming"


@pytest.mark.parametrize("secret", [None, ""], ids=["no file", "empty file"])
def test_without_a_secret_the_ui_refuses_everyone(tmp_path, secret):
    client = ui(tmp_path, secret).test_client()
    assert client.post("/swarm", headers=basic("failwhale", "")).status_code == 401
