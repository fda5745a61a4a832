"""docs/metrics.md lists every metric the services expose, with exactly its labels."""

from __future__ import annotations

import re

from services.common.app import CONTEXT, METRICS
from tests.conftest import ROOT

DOC = ROOT / "docs" / "metrics.md"
ROW = re.compile(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \| [a-z /]+ \| ([a-z, ]+|\(none\)) \|", re.M)


def documented() -> dict[str, set[str]]:
    out = {}
    for names, labels in ROW.findall(DOC.read_text()):
        label_set = set() if labels == "(none)" else {x.strip() for x in labels.split(",")}
        for name in re.findall(r"`([a-z_]+)`", names):
            out[name] = label_set
    return out


def exposed(app) -> dict[str, set[str]]:
    out = {}
    for family in app[METRICS].registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        out[name] = labels
    return out


async def test_every_exposed_metric_is_documented_with_its_labels(start_service, http):
    doc = documented()
    instances = ["tweets", "auth", "notifications", "timeline", "api-1", "api-2", "api-3", "api-4", "edge", "web"]
    apps = [(await start_service(i)).app for i in instances]
    lab = apps[0][CONTEXT].lab
    # Real traffic through web -> edge -> api-1 -> backends, so labelled families have series.
    async with http.post(f"{lab.url('web')}/api/1.1/guest/activate.json") as resp:
        body = await resp.json()
        assert resp.status == 200, body
        token = body["guest_token"]
    async with http.get(
        f"{lab.url('web')}/api/1.1/timeline/home.json", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 200
    seen: dict[str, set[str]] = {}
    for app in apps:
        for name, labels in exposed(app).items():
            seen[name] = seen.get(name, set()) | labels
    missing = sorted(set(seen) - set(doc))
    assert not missing, f"metrics not in docs/metrics.md: {missing}"
    # Labelled families only show labels once a child exists; compare where we saw any.
    wrong = {n: (seen[n], doc[n]) for n in seen if seen[n] and seen[n] != doc[n]}
    assert not wrong, f"labels differ from docs/metrics.md (exposed, documented): {wrong}"
    stale = sorted(
        n
        for n in doc
        if n.startswith("failwhale_") and n not in seen and n not in loadgen_exposed() and n not in chaos_exposed()
    )
    assert not stale, f"docs/metrics.md lists metrics nothing exposes: {stale}"


def loadgen_exposed() -> dict[str, set[str]]:
    """What the load generator's collector exposes, after one journey and one report."""
    from prometheus_client import CollectorRegistry

    from loadtest.tally import Tally, TallyCollector

    tally = Tally()
    tally.journey("web", "home", "failed", "server_error", 1.2)
    tally.report("website")
    registry = CollectorRegistry()
    registry.register(TallyCollector(tally, lambda: {"web": 3, "app": 5}))
    out = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        out[name] = set().union(*(set(s.labels) - {"le"} for s in family.samples))
    return out


def chaos_exposed() -> dict[str, set[str]]:
    from chaos.engine.events import Events

    events = Events(None, "127.0.0.1")
    events.steps.labels("inject", "ok").inc()
    events.phase.labels("outage").set(1)
    events.start_clock(0.0, 2.0)
    out = {}
    for family in events.registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        out[name] = set().union(*(set(s.labels) for s in family.samples if not s.name.endswith("_created")))
    return out


def test_scenario_run_metrics_are_documented_with_their_labels():
    doc = documented()
    for name, labels in chaos_exposed().items():
        assert name in doc, f"{name} is not in docs/metrics.md"
        assert labels == doc[name], (name, labels, doc[name])


def test_load_generator_metrics_are_documented_with_their_labels():
    doc = documented()
    for name, labels in loadgen_exposed().items():
        assert name in doc, f"{name} is not in docs/metrics.md"
        assert labels == doc[name], (name, labels, doc[name])
