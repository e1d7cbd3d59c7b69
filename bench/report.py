"""Raw measurements → the metric objects of bench/results.json (the Markdown is bench.markdown's).

Every metric has `velofarm`, `baseline`, `ratio`, `target`, `unit`, `met`, `min`, `max` and `reps`:
`velofarm` and `baseline` are medians over the repetitions, `min`/`max` the spread of `velofarm`'s
figure over them; for a `*_ratio` metric `ratio` is the median of each repetition's own ratio
(paired, so a load swing between repetitions cancels) and `ratio_min`/`ratio_max` its spread.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench.stats import spread

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.json"
RUN = ".venv/bin/python -m bench.run --only"
SECTION_OF = {"release_overhead_s": "release", "reproduce_overhead_ratio": "release", "warm_rebuild_ratio": "release",
              "transfer_loopback_32m": "transfer", "transfer_loopback_256m": "transfer",
              "transfer_rtt50_32m": "transfer", "transfer_rtt50_256m": "transfer", "master_rss_delta_mib": "transfer",
              "verify_hash": "verify", "fanout_start_spread_s": "fanout", "fanout_continue_s": "fanout",
              "container_start_s": "container", "concurrent_releases": "concurrent",
              "concurrent_master_rss_peak_mib": "concurrent", "master_rss_20_workers_mib": "workers20",
              "dashboard_500_tags_ms": "dashboard"}
ORDER = tuple(SECTION_OF)
KEYS = ("velofarm", "baseline", "ratio", "target", "unit", "met", "min", "max")


def _metric(key: str, velofarm: float, baseline: float, target: str, unit: str, met: bool,
            values: list[float] | None = None, ratio: float | None = None, **extra: Any) -> dict[str, Any]:
    if ratio is None:
        ratio = velofarm / baseline if baseline else float("inf")
    got = spread(values or [velofarm])
    return {"velofarm": round(velofarm, 3), "baseline": round(baseline, 3), "ratio": round(ratio, 3),
            "target": target, "unit": unit, "met": bool(met), "min": round(got.min, 3), "max": round(got.max, 3),
            "reps": got.n, "command": f"{RUN} {SECTION_OF[key]}",
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_1min": round(os.getloadavg()[0], 2), **extra}


def _paired(key: str, target: float, velofarm: list[float], baseline: list[float], unit: str,
            what: str, **extra: Any) -> dict[str, Any]:
    ratios = spread(v / b for v, b in zip(velofarm, baseline, strict=True))
    v, b = spread(velofarm), spread(baseline)
    return _metric(key, v.median, b.median, f"<= {target:g}x {what}", unit, ratios.median <= target, velofarm,
                   ratio=ratios.median, ratio_min=round(ratios.min, 3), ratio_max=round(ratios.max, 3),
                   baseline_min=round(b.min, 3), baseline_max=round(b.max, 3), **extra)


def release_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    reps = raw["reps"]
    overheads = [r["total"] - r["baseline"] for r in reps]
    over, base, total = spread(overheads), spread(r["baseline"] for r in reps), spread(r["total"] for r in reps)
    typical = min(reps, key=lambda r: abs(r["total"] - r["baseline"] - over.median))
    pairs = raw["pairs"]
    identical = all(p["identical"] for p in pairs)
    out = {
        "release_overhead_s": _metric(
            "release_overhead_s", over.median, base.median, "<= 3 s overhead", "s", over.median <= 3.0, overheads,
            ratio=total.median / base.median, total_s=round(total.median, 3),
            runs=[{"tag": r["tag"], "total_s": round(r["total"], 3), "direct_s": _rounded(r["direct_before"]),
                   "direct_after_s": _rounded(r["direct_after"])} for r in reps],
            breakdown=_rounded({**typical["phases"], "tag": typical["tag"]}),
            note="velofarm = tag push to release published minus the baseline: the slowest platform's direct "
                 "cargo build (mean of one right before and one right after the release); ratio = total / baseline"),
        "reproduce_overhead_ratio": _paired(
            "reproduce_overhead_ratio", 1.15, [r["reproduce2_total"] for r in reps], [r["total"] for r in reps],
            "s", "reproduce = 1", breakdown=_rounded({**typical["reproduce2_phases"], "tag": typical["tag"]}),
            note="tag push to published with [release] reproduce = 2 (velofarm) against reproduce = 1 (baseline), "
                 "two workers per platform, all on this one machine"),
        "warm_rebuild_ratio": _paired(
            "warm_rebuild_ratio", 0.30, [p["warm_s"] for p in pairs], [p["cold_s"] for p in pairs], "s",
            "cold, byte-identical", identical=identical,
            cargo_warm_s=round(spread(p["warm_cargo_s"] for p in pairs).median, 3),
            cargo_cold_s=round(spread(p["cold_cargo_s"] for p in pairs).median, 3),
            note="velofarm = warm rebuild, baseline = cold build (cache deleted), both alone on the worker that "
                 "built the release; whole platform builds (cargo_*: their cargo step only)"),
    }
    out["warm_rebuild_ratio"]["met"] = out["warm_rebuild_ratio"]["met"] and identical
    return out


def transfer_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, want in (("loopback", 3.0), ("rtt50", 10.0)):
        for mib in (32, 256):
            name = f"transfer_{key}_{mib}m"
            r = raw[name]
            v, b = spread(r["velofarm_all"]), spread(r["baseline_all"])
            out[name] = _metric(
                name, mib / v.median, mib / b.median, f">= {want:g}x FileUpload", "MiB/s",
                b.median / v.median >= want, [mib / t for t in r["velofarm_all"]],
                velofarm_s=round(v.median, 3), baseline_s=round(b.median, 3), baseline_reps=b.n,
                baseline_min=round(mib / b.max, 3), baseline_max=round(mib / b.min, 3),
                baseline_blocksize=r["blocksize"],
                note="build span from the first transfer step to the artifact verified in the store")
    fixed = raw.get("fixed_1m")
    if fixed:
        for key in out:
            out[key]["fixed_cost_1mib_s"] = _rounded(fixed)
    out["master_rss_delta_mib"] = _metric(
        "master_rss_delta_mib", raw["rss_delta_velofarm"], raw["rss_delta_baseline"], "<= 20 MiB", "MiB",
        raw["rss_delta_velofarm"] <= 20, rss_before_mib=round(raw["rss_base_velofarm"], 1),
        note="largest RSS change of the master while 4 x 256 MiB (1 GiB) flow through it")
    return out


def fanout_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    v, b = raw["velofarm"], raw["plain"]
    spreads = [r["first_step_spread"] for r in raw["velofarm_all"]]
    continues = [r["continue"] for r in raw["velofarm_all"]]
    return {
        "fanout_start_spread_s": _metric(
            "fanout_start_spread_s", v["first_step_spread"], b["first_step_spread"], "<= 0.5 s", "s",
            v["first_step_spread"] <= 0.5, spreads, first_start_s=round(v["first"], 3),
            baseline_first_start_s=round(b["first"], 3), build_record_spread_s=round(v["spread"], 3),
            baseline_build_record_spread_s=round(b["spread"], 3),
            note="spread of the children's first steps (when work begins); build_record_spread_s: of the "
                 "'build new' events, which lag behind the database under load"),
        "fanout_continue_s": _metric(
            "fanout_continue_s", v["continue"], b["continue"], "<= 0.5 s", "s", v["continue"] <= 0.5, continues,
            added_s=round(v["added"], 3), baseline_added_s=round(b["added"], 3)),
    }


def verify_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    v, b = spread(raw["release_all"]), spread(raw["hashlib_all"])
    return {"verify_hash": _metric("verify_hash", v.median, b.median, ">= 0.8x hashlib", "MiB/s",
                                   v.median / b.median >= 0.8, raw["release_all"],
                                   sha256sum_mibs=round(spread(raw["sha256sum_all"]).median, 1),
                                   archive_mib=raw["mib"],
                                   note="velofarm = archive bytes / time of the release step's work "
                                        "(velofarm.release.assemble); baseline = one hashlib pass")}


def container_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    reps = raw["reps"]
    parts = {k: round(spread(r[k] for r in reps if r[k] == r[k]).median, 3) if any(r[k] == r[k] for r in reps)
             else None for k in ("created", "started", "connected", "build_new")}  # NaN: no such event seen
    return {"container_start_s": _paired(
        "container_start_s", 1.5, [r["total"] for r in reps], [r["floor"] for r in reps], "s",
        "docker run", image=raw["image"], breakdown_s=parts,
        note="build request to the first step in a fresh container (velofarm) against `docker run --rm` of the "
             "same image, network and volumes running `true` (baseline); breakdown: seconds after the request")}


def concurrent_metrics(raw: dict[str, Any], idle_rss: float) -> dict[str, Any]:
    one, five = raw["one"], raw["five"]
    tags = five["tags"]
    return {
        "concurrent_releases": _metric(
            "concurrent_releases", five["wall_s"], one["wall_s"], f"all {tags} released", "s",
            five["completed"] == tags, completed=five["completed"], failed=five["failed"],
            master_cpu_s_per_release=round(five["cpu_s"] / tags, 3), baseline_master_cpu_s=round(one["cpu_s"], 3),
            children_cpu_s_per_release=round(five["children_cpu_s"] / tags, 3),
            baseline_children_cpu_s=round(one["children_cpu_s"], 3),
            note=f"{tags} tags in one push on 20 connected workers (velofarm: push to the last published) "
                 "against one tag alone on the same farm (baseline); master_cpu_s: the master process's own "
                 "CPU seconds, children_cpu_s: the processes it ran (assembler, changelog, git)"),
        "concurrent_master_rss_peak_mib": _metric(
            "concurrent_master_rss_peak_mib", five["rss_peak_mib"], idle_rss, "< 250 MiB", "MiB",
            five["rss_peak_mib"] < 250, single_release_peak_mib=round(one["rss_peak_mib"], 1),
            note=f"highest RSS of the master (every 20 ms) while {tags} releases run; baseline: the same "
                 "master idle with its 20 workers connected"),
    }


def workers20_metrics(velofarm: list[float], plain: list[float]) -> dict[str, Any]:
    return {"master_rss_20_workers_mib": _metric(
        "master_rss_20_workers_mib", max(velofarm), max(plain), "< 200 MiB", "MiB", max(velofarm) < 200, velofarm,
        note="highest of the RSS samples over 3 s once all 20 workers are connected; min/max: of those samples")}


def dashboard_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    return {"dashboard_500_tags_ms": _metric(
        "dashboard_500_tags_ms", raw["median_ms"], 200.0, "<= 200 ms", "ms", raw["median_ms"] <= 200,
        raw["all_ms"], note="median of 20 loads of the Releases page for 500 tags (build records handed in); "
                            "baseline = the 200 ms target")}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def merge(new: dict[str, Any]) -> dict[str, Any]:
    """This run's metrics over the previous results.json (sections not run keep their numbers)."""
    old = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    both = {**old, **new}
    return {key: both[key] for key in ORDER if key in both}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    import buildbot
    import twisted
    bb, tw = buildbot.version, twisted.__version__
    return (f"{model}, {os.cpu_count()} CPUs, {mem // 1024} MiB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}, Buildbot {bb}, Twisted {tw}")
