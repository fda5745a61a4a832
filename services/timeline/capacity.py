"""A concurrency gate whose size can change while requests wait on it."""

from __future__ import annotations

import asyncio


class CapacityGate:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._cond = asyncio.Condition()

    async def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds; False when none came free."""
        if self.in_use < self.capacity:
            self.in_use += 1
            return True
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: self.in_use < self.capacity), timeout)
            except asyncio.TimeoutError:
                return False
            self.in_use += 1
            return True

    async def release(self) -> None:
        self.in_use -= 1
        async with self._cond:
            self._cond.notify()

    async def resize(self, capacity: int) -> None:
        self.capacity = capacity
        async with self._cond:
            self._cond.notify_all()
