"""chaosfailwhale: a Chaos Toolkit extension that drives a failwhale lab.

Install it beside failwhale (``pip install -e . -e ./extensions/chaosfailwhale`` from the
repository's root; ``make setup`` does) and Chaos Toolkit sees it:
``chaos discover --no-install chaosfailwhale`` lists every activity with its arguments, and an
experiment's ``python`` providers name ``chaosfailwhale.actions`` and ``chaosfailwhale.probes``.
Which lab, and with which control token, come from the experiment's ``configuration`` and
``secrets`` (``chaosfailwhale.lab``). docs/chaostoolkit.md has the whole story; the example
experiments are in the repository, ``extensions/chaosfailwhale/experiments/``.
"""

from __future__ import annotations

from chaoslib.discovery.discover import discover_actions, discover_probes, initialize_discovery_result
from chaoslib.types import DiscoveredActivities, Discovery

__version__ = "0.1.0"
__all__ = ["__version__", "discover"]


def discover(discover_system: bool = True) -> Discovery:
    """Every action and probe this extension offers (a failwhale lab has nothing more to discover)."""
    discovery = initialize_discovery_result("chaosfailwhale", __version__, "failwhale")
    discovery["activities"].extend(load_exported_activities())
    return discovery


def load_exported_activities() -> list[DiscoveredActivities]:
    return [*discover_actions("chaosfailwhale.actions"), *discover_probes("chaosfailwhale.probes")]
