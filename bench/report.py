"""Raw measurements → the metric objects of bench/results.json, the printed table, BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.json"
MARKDOWN = BENCH.parent / "BENCHMARKS.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
RUN = ".venv/bin/python -m bench.run --only"
COMMANDS = {"release": f"{RUN} release", "transfer": f"{RUN} transfer", "fanout": f"{RUN} fanout",
            "verify": f"{RUN} verify", "workers20": f"{RUN} workers20",
            "dashboard": f"{RUN} dashboard"}


def _metric(velofarm: float, baseline: float, target: str, unit: str, met: bool, section: str,
            ratio: float | None = None, **extra: Any) -> dict[str, Any]:
    if ratio is None:
        ratio = velofarm / baseline if baseline else float("inf")
    return {"velofarm": round(velofarm, 3), "baseline": round(baseline, 3), "ratio": round(ratio, 3),
            "target": target, "unit": unit, "met": bool(met), "command": COMMANDS[section],
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_1min": round(os.getloadavg()[0], 2), **extra}


def release_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    slowest = max(raw["direct"].values())
    total = raw["phases"]["total"]
    overhead = total - slowest
    warm_ratio = raw["warm_s"] / raw["cold_s"]
    return {
        "release_overhead_s": _metric(overhead, slowest, "<= 3 s overhead", "s", overhead <= 3.0, "release",
                                      ratio=total / slowest, total_s=round(total, 3),
                                      direct_builds_s={k: round(v, 2) for k, v in raw["direct"].items()},
                                      breakdown=_rounded(raw["phases"]),
                                      note="velofarm = tag push to published release minus the slowest "
                                           "platform's own cargo build (baseline); ratio = total / baseline"),
        "warm_rebuild_ratio": _metric(raw["warm_s"], raw["cold_s"], "<= 0.30 and byte-identical", "s",
                                      warm_ratio <= 0.30 and raw["identical"], "release",
                                      ratio=warm_ratio, identical=raw["identical"],
                                      cargo_warm_s=round(raw["warm_cargo_s"], 3),
                                      cargo_cold_s=round(raw["cold_cargo_s"], 3),
                                      note="velofarm = warm rebuild, baseline = cold build, both alone; "
                                           "whole platform builds (cargo_*: their cargo step only)"),
    }


def transfer_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, want in (("loopback", 3.0), ("rtt50", 10.0)):
        for mib in (32, 256):
            r = raw[f"transfer_{key}_{mib}m"]
            v, b = mib / r["velofarm_s"], mib / r["baseline_s"]
            out[f"transfer_{key}_{mib}m"] = _metric(
                v, b, f">= {want:g}x FileUpload", "MiB/s", v / b >= want, "transfer",
                velofarm_s=round(r["velofarm_s"], 3), baseline_s=round(r["baseline_s"], 3),
                baseline_blocksize=r["blocksize"],
                note="build span from the first transfer step to the artifact verified in the store")
    fixed = raw.get("fixed_1m")
    if fixed:
        for key in out:
            out[key]["fixed_cost_1mib_s"] = {k: round(v, 3) for k, v in fixed.items()}
    out["master_rss_delta_mib"] = _metric(
        raw["rss_delta_velofarm"], raw["rss_delta_baseline"], "<= 20 MiB", "MiB",
        raw["rss_delta_velofarm"] <= 20, "transfer", rss_before_mib=round(raw["rss_base_velofarm"], 1),
        note="largest RSS change of the master while 4 x 256 MiB (1 GiB) flow through it")
    return out


def fanout_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    v, b = raw["velofarm"], raw["plain"]
    return {
        "fanout_start_spread_s": _metric(
            v["first_step_spread"], b["first_step_spread"], "<= 0.5 s", "s", v["first_step_spread"] <= 0.5,
            "fanout", first_start_s=round(v["first"], 3), baseline_first_start_s=round(b["first"], 3),
            build_record_spread_s=round(v["spread"], 3), baseline_build_record_spread_s=round(b["spread"], 3),
            note="spread of the children's first steps (when work begins); build_record_spread_s: of the "
                 "'build new' events, which lag behind the database under load"),
        "fanout_continue_s": _metric(
            v["continue"], b["continue"], "<= 0.5 s", "s", v["continue"] <= 0.5, "fanout",
            added_s=round(v["added"], 3), baseline_added_s=round(b["added"], 3)),
    }


def verify_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    ratio = raw["release_mibs"] / raw["hashlib_mibs"]
    return {"verify_hash": _metric(raw["release_mibs"], raw["hashlib_mibs"], ">= 0.8x hashlib", "MiB/s",
                                   ratio >= 0.8, "verify", sha256sum_mibs=round(raw["sha256sum_mibs"], 1),
                                   archive_mib=raw["mib"],
                                   note="velofarm = archive bytes / time of the release step's work "
                                        "(velofarm.release.assemble); baseline = one hashlib pass")}


def workers20_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    return {"master_rss_20_workers_mib": _metric(raw["velofarm_mib"], raw["plain_mib"], "< 200 MiB", "MiB",
                                                 raw["velofarm_mib"] < 200, "workers20")}


def dashboard_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    return {"dashboard_500_tags_ms": _metric(raw["median_ms"], 200.0, "< 200 ms", "ms", raw["median_ms"] < 200,
                                             "dashboard", max_ms=round(raw["max_ms"], 1),
                                             note="median of 20 loads of the Releases page for 500 tags "
                                                  "(build records handed in); baseline = the 200 ms target")}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


ORDER = ("release_overhead_s", "transfer_loopback_32m", "transfer_loopback_256m", "transfer_rtt50_32m",
         "transfer_rtt50_256m", "verify_hash", "fanout_start_spread_s", "fanout_continue_s",
         "master_rss_delta_mib", "master_rss_20_workers_mib", "warm_rebuild_ratio", "dashboard_500_tags_ms")


def merge(new: dict[str, Any]) -> dict[str, Any]:
    """This run's metrics over the previous results.json (sections not run keep their numbers)."""
    old = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    both = {**old, **new}
    return {key: both[key] for key in ORDER if key in both}


def table(results: dict[str, Any]) -> str:
    rows = [("metric", "velofarm", "baseline", "ratio", "target", "met")]
    for key, m in results.items():
        rows.append((key, f"{m['velofarm']:g} {m['unit']}", f"{m['baseline']:g} {m['unit']}",
                     f"{m['ratio']:g}", m["target"], "yes" if m["met"] else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


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


def markdown_block(results: dict[str, Any], run_note: str) -> str:
    lines = [BEGIN, "", run_note, "",
             "| metric | velofarm | baseline | ratio | target | met | reproduce |",
             "|---|---|---|---|---|---|---|"]
    for key, m in results.items():
        met = "yes" if m["met"] else "**no**"
        lines.append(f"| `{key}` | {m['velofarm']:g} {m['unit']} | {m['baseline']:g} {m['unit']} | "
                     f"{m['ratio']:g} | {m['target']} | {met} | `{m['command']}` |")
    release = results.get("release_overhead_s", {}).get("breakdown")
    if release:
        lines += ["", *breakdown_table(release)]
    return "\n".join(lines + ["", END])


PHASES = [("starts", "build starts (s after the push)"), ("prepare", "checkout, tools bundle, preflight"),
          ("cargo", "cargo build"), ("smoke_and_size", "smoke test + size gate"),
          ("pack", "stage + archive"), ("transfer", "hash + transfer + verify + store"),
          ("ends", "build ends (s after the push)")]


def breakdown_table(phases: dict[str, Any]) -> list[str]:
    """The tag-to-release timeline as Markdown: per-platform phases, then the coordinator's."""
    names = list(phases["platforms"])
    rows = ["Tag to release, seconds (durations, except where it says \"after the push\"):", "",
            "| phase | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rows += [f"| {label} | " + " | ".join(f"{phases['platforms'][n][key]:.2f}" for n in names) + " |"
             for key, label in PHASES]
    rows += ["", f"Change reaches the master {phases['change_at_master']:.2f} s after the push; the release "
             f"build starts at {phases['release_starts']:.2f} s; the coordinator resumes "
             f"{phases['coordinator_resumes']:.2f} s after the last platform ends; verify and assemble "
             f"{phases['verify_and_assemble']:.2f} s; publish {phases['publish']:.2f} s; "
             f"published {phases['total']:.2f} s after the push."]
    return rows


def write(results: dict[str, Any], run_note: str) -> None:
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    text = MARKDOWN.read_text(encoding="utf-8") if MARKDOWN.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    MARKDOWN.write_text(head + markdown_block(results, run_note) + tail, encoding="utf-8")
