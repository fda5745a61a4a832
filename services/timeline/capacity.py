"""A concurrency gate whose size can change while requests wait on it."""

from __future__ import annotations

import asyncio


class CapacityGate:
    """At most ``capacity`` holders; others wait their turn in arrival order, up to a timeout."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._waiters = 0
        self._cond = asyncio.Condition()

    async def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds; False when none came free."""
        # The fast path may not overtake requests already waiting for a slot.
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return True
        self._waiters += 1
        try:
            async with self._cond:
                await asyncio.wait_for(self._cond.wait_for(lambda: self.in_use < self.capacity), timeout)
                self.in_use += 1
                return True
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1

    async def release(self) -> None:
        self.in_use -= 1
        async with self._cond:
            self._cond.notify()

    def resize(self, capacity: int) -> None:
        """Apply a new size; waiters are woken by the next release, or at once if it grew."""
        grew = capacity > self.capacity
        self.capacity = capacity
        if grew:
            task = asyncio.get_running_loop().create_task(self._wake_all())
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _wake_all(self) -> None:
        async with self._cond:
            self._cond.notify_all()


# Tasks must be referenced until done or asyncio may drop them.
_background: set[asyncio.Task] = set()
