"""failwhale's one Prometheus client: PromQL over Prometheus's HTTP API, blocking and async.

Every figure the chaos side reads (a run's measures and series, a rollout's guard, a workshop's
alerts and lever effects) goes through here, so a refused query or an unreachable Prometheus is
one :class:`~chaos.errors.LabError` saying which query and why, whoever asked.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TypedDict

import aiohttp

from chaos.errors import LabError


class Sample(TypedDict, total=False):
    """One series of a query's answer, as Prometheus's HTTP API gives it: its labels, and its value
    (an instant query) or values (a range query) as ``[unix_seconds, "number"]`` pairs."""

    metric: dict[str, str]
    value: tuple[float, str]
    values: list[tuple[float, str]]


Result = list[Sample]


def _result(body: Any, promql: str) -> Result:
    if not isinstance(body, dict) or body.get("status") != "success":
        why = body.get("error", body) if isinstance(body, dict) else body
        raise LabError(f"Prometheus refused {promql!r}: {why}")
    return body["data"]["result"]


def api(prometheus_url: str, endpoint: str, params: dict[str, str], timeout_s: float = 10) -> Result:
    """One blocking call of Prometheus's HTTP API (``query`` or ``query_range``); its result list."""
    url = f"{prometheus_url}/api/v1/{endpoint}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as e:  # a bad query: Prometheus says why in the body
        try:
            why = json.load(e).get("error", e.reason)
        except ValueError:
            why = e.reason
        raise LabError(f"Prometheus refused {params['query']!r}: {why}") from e
    except (OSError, ValueError) as e:
        raise LabError(f"Prometheus query failed ({params['query']}): {e}") from e
    return _result(body, params["query"])


def query(prometheus_url: str, promql: str, at: float | None = None, timeout_s: float = 10) -> Result:
    """An instant query, now or at Unix time ``at``."""
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    return api(prometheus_url, "query", params, timeout_s)


def query_range(prometheus_url: str, promql: str, start: float, end: float, step: float) -> Result:
    """A range query from ``start`` to ``end`` (Unix seconds), a point every ``step`` seconds."""
    params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    return api(prometheus_url, "query_range", params, timeout_s=20)


def scalar(prometheus_url: str, promql: str, at: float | None = None) -> float | None:
    """The first series' value of an instant query; None when it returns nothing, or NaN."""
    result = query(prometheus_url, promql, at)
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


async def query_async(session: aiohttp.ClientSession, prometheus_url: str, promql: str) -> Result:
    """An instant query now, on the caller's event loop (a rollout's guard between waves)."""
    try:
        async with session.get(f"{prometheus_url}/api/v1/query", params={"query": promql}) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        raise LabError(f"Prometheus query failed ({promql}): {e}") from e
    return _result(body, promql)
