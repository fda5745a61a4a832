"""Keeping the lab's architecture changes alive, and only for as long as their owner lives.

Every architecture change a process accepts is a lease (``lease_s``, 15 s by default): unless
its owner renews it, the process goes back to its baseline by itself. A ``LeaseKeeper`` is the
owner's side: a daemon thread that renews every change it holds, a few times per lease. The
runner, ``failwhale rollout`` and a workshop each hold one while their change should stay. When
the owner dies (Ctrl-C, a crash, ``kill -9``), the renewals stop and within one lease every
process is back on its baseline: nothing the lab changed outlives whoever changed it.

A process that answers a renewal with 409 runs another version now (its lease lapsed, or
someone else moved it): the keeper stops renewing it and says so once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from chaos.control import LabControl
from services.architecture.model import DEFAULT_LEASE_S

# Renew three times per lease: a renewal lost to a busy moment still leaves two more tries.
RENEWALS_PER_LEASE = 3
# A process answers a renewal with 409 until the change it was just sent lands (the change is
# held before it is sent, so that a lost answer still leaves it renewed, and rolled back): for
# this long after it is held, a 409 is not taken to mean that the change is gone.
LANDING_S = 5.0


class LeaseKeeper:
    """Renews ``{instance: version}`` leases on the lab's processes until stopped."""

    def __init__(
        self, control: LabControl, lease_s: float = DEFAULT_LEASE_S, say: Callable[[str], None] = lambda _m: None
    ) -> None:
        self.control = control
        self.lease_s = lease_s
        self.say = say
        self._held: dict[str, str] = {}
        self._since: dict[str, float] = {}  # monotonic time each instance was last held
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- what is held --------------------------------------------------------------------

    def hold(self, names: list[str], version: str) -> None:
        """From now on, renew ``version`` on each of ``names`` (call it before the change is sent)."""
        now = time.monotonic()
        with self._lock:
            self._held.update(dict.fromkeys(names, version))
            self._since.update(dict.fromkeys(names, now))

    def release(self, names: list[str] | None = None) -> None:
        """Stop renewing ``names`` (default: all); their leases then lapse unless undone first."""
        with self._lock:
            if names is None:
                self._held.clear()
            for name in names or ():
                self._held.pop(name, None)

    def held(self) -> dict[str, str]:
        with self._lock:
            return dict(self._held)

    # ---- renewing ------------------------------------------------------------------------

    async def renew_once(self) -> list[str]:
        """One round of renewals; the instances that no longer run the version they were given."""
        by_version: dict[str, list[str]] = {}
        for name, version in self.held().items():
            by_version.setdefault(version, []).append(name)
        gone: list[str] = []
        for version, names in by_version.items():
            answers = await self.control.each(
                "POST",
                "/control/architecture/renew",
                only=names,
                json={"version": version, "lease_s": self.lease_s},
                timeout_s=self.lease_s / RENEWALS_PER_LEASE,
            )
            # No answer at all (a busy or restarting process) is tried again next round.
            landed = time.monotonic() - LANDING_S
            gone += [a.instance for a in answers if a.status == 409 and self._since.get(a.instance, 0.0) <= landed]
        if gone:
            with self._lock:
                for name in gone:
                    self._held.pop(name, None)
            self.say(f"lease: {', '.join(gone)} no longer run(s) the change (lapsed or moved by someone else)")
        return gone

    def _run(self) -> None:
        interval = self.lease_s / RENEWALS_PER_LEASE
        while not self._stop.wait(interval):
            if self.held():
                asyncio.run(self.renew_once())

    def start(self) -> LeaseKeeper:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (what is held then lapses within one lease)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.lease_s)
            self._thread = None

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
