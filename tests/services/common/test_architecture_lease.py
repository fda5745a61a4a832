"""Architecture changes through the control plane are leases: reported, renewable by the version
that runs, permanent only with ``keep``, gone by themselves when unrenewed, and every bad body
is one line of 400."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.common.app import DEFAULT_LEASE_S, MAX_LEASE_S
from tests.conftest import TOKEN, metric_value

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LAPSES = "failwhale_architecture_lease_lapses_total"


async def call(http, method, url, body=None, status=200):
    async with http.request(method, url, json=body, headers=AUTH) as resp:
        answer = await resp.json()
        assert resp.status == status, answer
        return answer


async def put(http, svc, arch_data, version="v2", status=200, **fields):
    doc = {**arch_data, "version": version}
    return await call(http, "PUT", f"{svc.url}/control/architecture", {"architecture": doc, **fields}, status)


async def renew(http, svc, body, status=200):
    return await call(http, "POST", f"{svc.url}/control/architecture/renew", body, status)


async def running(http, svc):
    return await call(http, "GET", f"{svc.url}/control/architecture")


async def until_version(svc, version, within_s=2.0):
    # Read in-process, not through the control plane, so the lapse loop alone does the work.
    for _ in range(int(within_s / 0.05)):
        if svc.ctx.arch.version == version:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{svc.ctx.instance} still runs {svc.ctx.arch.version}, not {version}")


def one_line_error(body) -> str:
    message = body["errors"][0]["message"]
    assert message and "\n" not in message
    return message


async def test_a_change_is_leased_by_default_and_the_lease_is_reported(start_service, http, arch_data):
    svc = await start_service("api-1")
    answer = await put(http, svc, arch_data)
    assert (answer["version"], answer["previous"]) == ("v2", "v1")
    assert answer["lease_expires_in_s"] == pytest.approx(DEFAULT_LEASE_S, abs=1)
    now = await running(http, svc)
    assert (now["version"], now["baseline"]) == ("v2", "v1")
    assert 0 < now["lease_expires_in_s"] <= DEFAULT_LEASE_S
    answer = await put(http, svc, arch_data, lease_s=60)
    assert answer["lease_expires_in_s"] == pytest.approx(60, abs=1)


async def test_renew_extends_the_lease_of_the_version_that_runs(start_service, http, arch_data):
    svc = await start_service("api-1")
    await put(http, svc, arch_data, lease_s=5)
    answer = await renew(http, svc, {"version": "v2", "lease_s": 120})
    assert answer["version"] == "v2"
    assert answer["lease_expires_in_s"] == pytest.approx(120, abs=1)
    assert (await running(http, svc))["lease_expires_in_s"] == pytest.approx(120, abs=1)
    answer = await renew(http, svc, {"version": "v2"})  # the default lease from now
    assert answer["lease_expires_in_s"] == pytest.approx(DEFAULT_LEASE_S, abs=1)


async def test_a_renewed_lease_outlives_its_first_term(start_service, http, arch_data):
    svc = await start_service("api-1")
    await put(http, svc, arch_data, lease_s=1)
    await renew(http, svc, {"version": "v2", "lease_s": 60})
    await asyncio.sleep(1.3)  # past the first term, and several turns of the lapse loop
    assert svc.ctx.arch.version == "v2"
    assert metric_value(svc.app, LAPSES) == 0


async def test_renewing_a_version_that_does_not_run_is_409_naming_what_runs(start_service, http, arch_data):
    svc = await start_service("api-1")
    await put(http, svc, arch_data, lease_s=60)
    body = await renew(http, svc, {"version": "v3"}, status=409)
    assert "runs architecture v2, not v3" in one_line_error(body)
    assert body["version"] == "v2"
    await call(http, "POST", f"{svc.url}/control/architecture/baseline")
    body = await renew(http, svc, {"version": "v2"}, status=409)  # the change is gone
    assert "runs architecture v1, not v2" in one_line_error(body)
    body = await renew(http, svc, {"version": "v1"}, status=409)
    assert "nothing to renew" in one_line_error(body)
    assert body["version"] == "v1"


async def test_a_kept_change_is_permanent(start_service, http, arch_data):
    svc = await start_service("api-1")
    assert (await put(http, svc, arch_data, keep=True))["lease_expires_in_s"] is None
    assert (await renew(http, svc, {"version": "v2"}))["lease_expires_in_s"] is None
    await asyncio.sleep(0.6)  # over two turns of the lapse loop
    now = await running(http, svc)
    assert (now["version"], now["lease_expires_in_s"]) == ("v2", None)
    assert metric_value(svc.app, LAPSES) == 0


async def test_an_unrenewed_lease_lapses_back_to_the_baseline(start_service, http, arch_data, caplog):
    svc = await start_service("api-1")
    with caplog.at_level(logging.WARNING, logger="failwhale.services"):
        await put(http, svc, arch_data, lease_s=0.3)
        await until_version(svc, "v1")
    assert svc.ctx.arch is svc.ctx.architecture.baseline
    assert (await running(http, svc))["lease_expires_in_s"] is None
    assert metric_value(svc.app, LAPSES, service="api", replica="api-1") == 1
    assert metric_value(svc.app, "failwhale_deploy_info", version="v1") == 1
    assert metric_value(svc.app, "failwhale_deploy_info", version="v2") == 0
    lapsed = [r.getMessage() for r in caplog.records if "lapsed" in r.getMessage()]
    assert lapsed == ["api-1: lease on architecture v2 lapsed; back on v1"]
    assert [r.levelno for r in caplog.records if "lapsed" in r.getMessage()] == [logging.WARNING]
    assert "runs architecture v1, not v2" in one_line_error(await renew(http, svc, {"version": "v2"}, status=409))


async def test_the_baseline_ends_a_lease(start_service, http, arch_data):
    svc = await start_service("api-1")
    await put(http, svc, arch_data, lease_s=0.3)
    answer = await call(http, "POST", f"{svc.url}/control/architecture/baseline")
    assert answer == {"version": "v1", "previous": "v2"}
    assert (await running(http, svc))["lease_expires_in_s"] is None
    # So does a PUT of the baseline version: nothing is left to undo.
    await put(http, svc, arch_data, lease_s=0.3)
    assert (await put(http, svc, arch_data, version="v1", lease_s=0.3))["lease_expires_in_s"] is None
    await asyncio.sleep(0.6)
    assert metric_value(svc.app, LAPSES) == 0


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"lease_s": 0}, "lease_s must be"),
        ({"lease_s": -1}, "lease_s must be"),
        ({"lease_s": MAX_LEASE_S + 1}, f"at most {MAX_LEASE_S:g}"),
        ({"lease_s": "x"}, 'not "x"'),
        ({"lease_s": True}, "not true"),
        ({"lease_s": None}, "not null"),
        ({"keep": "yes"}, 'keep must be true or false, not "yes"'),
        ({"keep": True, "lease_s": 30}, "not both"),
    ],
)
async def test_a_bad_put_is_one_line_of_400_and_changes_nothing(start_service, http, arch_data, fields, words):
    svc = await start_service("api-1")
    assert words in one_line_error(await put(http, svc, arch_data, status=400, **fields))
    assert svc.ctx.arch.version == "v1"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "'version' field"),
        ({"lease_s": 30}, "'version' field"),
        ({"version": 2}, "'version' field"),
        ({"version": "v2", "lease_s": 0}, "lease_s must be"),
        ({"version": "v2", "lease_s": MAX_LEASE_S + 1}, f"at most {MAX_LEASE_S:g}"),
        ({"version": "v2", "lease_s": "x"}, 'not "x"'),
        ({"version": "v2", "lease_s": True}, "not true"),
    ],
)
async def test_a_bad_renewal_is_one_line_of_400_and_changes_nothing(start_service, http, arch_data, body, words):
    svc = await start_service("api-1")
    await put(http, svc, arch_data, lease_s=60)
    assert words in one_line_error(await renew(http, svc, body, status=400))
    assert (await running(http, svc))["lease_expires_in_s"] == pytest.approx(60, abs=1)


async def test_renewing_needs_the_control_token(start_service, http):
    svc = await start_service("api-1")
    async with http.post(f"{svc.url}/control/architecture/renew", json={"version": "v1"}) as resp:
        assert resp.status == 401


async def test_metrics_show_the_time_left_on_the_lease(start_service, http, arch_data):
    svc = await start_service("api-1")
    left = "failwhale_architecture_lease_seconds"
    assert metric_value(svc.app, left) == 0.0  # the baseline has no lease
    await put(http, svc, arch_data, lease_s=5)
    assert 4.0 < metric_value(svc.app, left) <= 5.0
    await put(http, svc, arch_data, version="v3", keep=True)
    assert metric_value(svc.app, left) == 0.0  # kept for good: nothing lapses


async def test_a_halt_puts_the_process_back_and_says_how_long_ago_a_plain_rollback_does_not(
    start_service, http, arch_data
):
    svc = await start_service("api-1")
    assert (await running(http, svc))["halted_s_ago"] is None
    await put(http, svc, arch_data)
    await call(http, "POST", f"{svc.url}/control/architecture/baseline")
    assert (await running(http, svc))["halted_s_ago"] is None  # a rollback is no halt
    await put(http, svc, arch_data)
    answer = await call(http, "POST", f"{svc.url}/control/architecture/baseline?halt=1")
    assert (answer["version"], answer["previous"]) == ("v1", "v2")
    await asyncio.sleep(0.2)
    assert 0.2 <= (await running(http, svc))["halted_s_ago"] < 2
    bad = await call(http, "POST", f"{svc.url}/control/architecture/baseline?halt=yes", status=400)
    assert one_line_error(bad) == 'halt must be 0 or 1, not "yes"'
