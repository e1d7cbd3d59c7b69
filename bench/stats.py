"""Repetitions that fit the run's time budget, and their median, min and max.

Every section is given a deadline (bench.run's Budget): the time left once the wanted sections
after it have their share reserved. A section repeats its measurement up to the count it wants,
and stops earlier only when the next repetition (as long as the longest so far) would end past
its deadline. Pure: no Buildbot, no processes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float
    n: int


def spread(values: Iterable[float]) -> Spread:
    got = [float(v) for v in values]
    if not got:
        raise ValueError("spread() of no values: the measurement did not run once")
    return Spread(statistics.median(got), min(got), max(got), len(got))


def repeat(measure: Callable[[int], T], most: int, deadline: float, least: int = 1,
           clock: Callable[[], float] = time.monotonic) -> list[T]:
    """measure(i) for i = 0.. up to `most` times; after `least`, only while one more fits before `deadline`."""
    results: list[T] = []
    longest = 0.0
    for i in range(most):
        now = clock()
        if i >= least and now + longest > deadline:
            break
        results.append(measure(i))
        longest = max(longest, clock() - now)
    return results


class Budget:
    """Deadlines for the sections of one run: `total` seconds from `start`, each later section's
    share reserved, so an early section that runs long squeezes the ones after it to their least
    repetitions instead of pushing the run past `total`."""

    def __init__(self, total: float, shares: dict[str, float], order: Sequence[str], start: float) -> None:
        unknown = [name for name in order if name not in shares]
        if unknown:
            raise ValueError(f"no time share for section(s) {', '.join(unknown)}")
        self.total, self.shares, self.order, self.start = total, shares, list(order), start

    def deadline(self, section: str) -> float:
        later = self.order[self.order.index(section) + 1:]
        return self.start + self.total - sum(self.shares[name] for name in later)

    def planned(self) -> float:
        return sum(self.shares[name] for name in self.order)
