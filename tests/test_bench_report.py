"""The benchmark's pure report logic: repetitions within a budget, the metric key set, the Markdown.

No benchmark runs here (they are `make bench`, not `make test`); these check the arithmetic.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import markdown, report
from bench.stats import Budget, repeat, spread


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeat_stops_when_the_next_repetition_would_end_past_the_deadline() -> None:
    clock = Clock()

    def rep(i: int) -> int:
        clock.now += 10
        return i
    assert repeat(rep, 5, deadline=25, clock=clock) == [0, 1]  # a third would end at 30
    clock.now = 100
    assert repeat(rep, 5, deadline=0, least=2, clock=clock) == [0, 1]  # the least runs even when late
    clock.now = 0
    assert repeat(rep, 3, deadline=1000, clock=clock) == [0, 1, 2]


def test_budget_reserves_the_later_sections_shares() -> None:
    budget = Budget(100, {"a": 30, "b": 20, "c": 10}, ["a", "b", "c"], start=1000)
    assert [budget.deadline(s) for s in ("a", "b", "c")] == [1070, 1090, 1100]
    assert budget.planned() == 60
    with pytest.raises(ValueError, match="no time share for section"):
        Budget(100, {"a": 1}, ["a", "x"], 0)


def test_spread_of_nothing_says_so() -> None:
    assert spread([3, 1, 2]) == spread([1, 2, 3])
    assert (spread([3, 1, 2]).median, spread([4, 1]).median) == (2, 2.5)
    with pytest.raises(ValueError, match="did not run once"):
        spread([])


def _release_rep(tag: str, total: float, direct: float, twice: float) -> dict[str, Any]:
    phases = {"change_at_master": 0.3, "release_starts": 0.5, "coordinator_resumes": 0.1, "total": total,
              "coordinator_steps": [["resolve tag", 0.2], ["publish", 0.1]],
              "platforms": {"linux-x86_64": {"starts": 1.0, "ends": total - 1, "build": total - 2,
                                             "between_steps": 0.4,
                                             "steps": [["checkout tag", 0.5], ["cargo build", direct]]}}}
    return {"tag": tag, "direct": {"linux-x86_64": direct}, "direct_before": {"linux-x86_64": direct},
            "direct_after": {"linux-x86_64": direct}, "baseline": direct, "total": total,
            "reproduce2_total": twice, "phases": phases, "reproduce2_phases": phases}


def test_release_metrics_are_medians_with_their_spread_and_the_full_key_set() -> None:
    raw = {"reps": [_release_rep("v1.0.0", 10, 4, 11), _release_rep("v1.1.0", 12, 4, 15),
                    _release_rep("v1.2.0", 9, 3, 9.9)],
           "pairs": [{"warm_s": 2, "cold_s": 8, "warm_cargo_s": 0.1, "cold_cargo_s": 4, "identical": True},
                     {"warm_s": 3, "cold_s": 6, "warm_cargo_s": 0.2, "cold_cargo_s": 3, "identical": True}]}
    got = report.release_metrics(raw)
    for metric in got.values():
        assert set(report.KEYS) <= set(metric)
    overhead = got["release_overhead_s"]
    assert (overhead["velofarm"], overhead["min"], overhead["max"], overhead["reps"]) == (6, 6, 8, 3)
    assert overhead["baseline"] == 4 and not overhead["met"]
    assert overhead["breakdown"]["tag"] in ("v1.0.0", "v1.2.0")  # a run whose overhead is the median
    twice = got["reproduce_overhead_ratio"]
    assert twice["ratio"] == 1.1 and twice["met"]  # median of 1.1, 1.25, 1.1
    warm = got["warm_rebuild_ratio"]
    assert warm["ratio"] == pytest.approx((2 / 8 + 3 / 6) / 2, abs=1e-3) and not warm["met"]
    raw["pairs"] = [{**raw["pairs"][0], "identical": False}]
    assert not report.release_metrics(raw)["warm_rebuild_ratio"]["met"]  # 0.25, but the bytes differ


def test_transfer_min_and_max_are_throughputs_of_the_slowest_and_fastest_runs() -> None:
    case = {"velofarm_all": [1.0, 2.0, 4.0], "baseline_all": [4.0, 8.0], "blocksize": "512k"}
    raw = {f"transfer_{k}_{m}m": case for k in ("loopback", "rtt50") for m in (32, 256)}
    raw.update(rss_delta_velofarm=1.0, rss_delta_baseline=2.0, rss_base_velofarm=90.0)
    got = report.transfer_metrics(raw)["transfer_loopback_32m"]
    assert (got["velofarm"], got["min"], got["max"]) == (16, 8, 32)
    assert got["baseline"] == pytest.approx(32 / 6, abs=1e-3)
    assert got["met"]  # 6 s / 2 s = 3x


def test_the_markdown_block_lists_misses_and_each_platforms_steps() -> None:
    raw = {"reps": [_release_rep("v1.0.0", 10, 4, 11)],
           "pairs": [{"warm_s": 2, "cold_s": 8, "warm_cargo_s": 0.1, "cold_cargo_s": 4, "identical": True}]}
    results = report.release_metrics(raw)
    results["old_entry"] = {"velofarm": 1, "baseline": 1, "ratio": 1, "target": "t", "unit": "s", "met": True,
                            "command": "c"}  # written before min/max existed
    block = markdown.markdown_block(results, "Last run: now")
    assert block.startswith(markdown.BEGIN) and block.endswith(markdown.END)
    assert "Missed: `release_overhead_s`" in block and "| cargo build | 4.00 |" in block
    assert "| `old_entry` | 1 s | – |" in block
    assert "archives byte-identical: yes" in block
    assert "NO" in markdown.table(results)
