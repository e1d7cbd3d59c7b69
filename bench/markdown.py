"""The printed table and BENCHMARKS.md's results block (between the begin/end markers), from results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import RESULTS

MARKDOWN = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def _num(value: float, unit: str) -> str:
    return f"{value:g} {unit}"


def _range(m: dict[str, Any], sep: str) -> str:
    """min..max; an entry from before results.json had them shows a dash."""
    return f"{m['min']:g}{sep}{m['max']:g}" if "min" in m and "max" in m else "–"


def table(results: dict[str, Any]) -> str:
    rows = [("metric", "velofarm (median)", "min..max", "baseline", "ratio", "target", "met", "n")]
    for key, m in results.items():
        rows.append((key, _num(m["velofarm"], m["unit"]), _range(m, ".."),
                     _num(m["baseline"], m["unit"]), f"{m['ratio']:g}", m["target"], "yes" if m["met"] else "NO",
                     str(m.get("reps", "–"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def markdown_block(results: dict[str, Any], run_note: str) -> str:
    lines = [BEGIN, "", run_note, "",
             "| metric | velofarm (median) | min – max | baseline | ratio | target | met | n | load | reproduce |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, m in results.items():
        met = "yes" if m["met"] else "**no**"
        lines.append(f"| `{key}` | {_num(m['velofarm'], m['unit'])} | {_range(m, ' – ')} | "
                     f"{_num(m['baseline'], m['unit'])} | {m['ratio']:g} | {m['target']} | {met} | "
                     f"{m.get('reps', '–')} | {m.get('load_1min', '')} | `{m['command']}` |")
    missed = [f"`{k}`" for k, m in results.items() if not m["met"]]
    lines += ["", "Missed: " + (", ".join(missed) + " (why, and what would close each: below)." if missed else "none.")]
    release = results.get("release_overhead_s", {}).get("breakdown")
    if release and all("steps" in p for p in release.get("platforms", {"": {}}).values()):
        lines += ["", *breakdown_table(release)]
    extra = side_notes(results)
    if extra:
        lines += ["", *extra]
    return "\n".join(lines + ["", END])


def breakdown_table(phases: dict[str, Any]) -> list[str]:
    """One release's timeline: each platform build's steps, then the coordinator's."""
    names = list(phases["platforms"])
    plats = phases["platforms"]
    order: list[str] = []
    for n in names:
        order += [s for s, _ in plats[n]["steps"] if s not in order]

    def cell(n: str, step: str) -> str:
        got = [d for s, d in plats[n]["steps"] if s == step]
        return f"{sum(got):.2f}" if got else "–"
    rows = [f"Tag to release of {phases.get('tag', 'the typical run')}, seconds (durations, except where it says "
            "\"after the push\"):", "", "| step | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
            "| build starts (s after the push) | " + " | ".join(f"{plats[n]['starts']:.2f}" for n in names) + " |"]
    rows += [f"| {step} | " + " | ".join(cell(n, step) for n in names) + " |" for step in order]
    rows += ["| between steps (Buildbot bookkeeping) | "
             + " | ".join(f"{plats[n]['between_steps']:.2f}" for n in names) + " |",
             "| build ends (s after the push) | " + " | ".join(f"{plats[n]['ends']:.2f}" for n in names) + " |"]
    coordinator = "; ".join(f"{s} {d:.2f} s" for s, d in phases.get("coordinator_steps", []))
    resumes = phases.get("coordinator_resumes")
    rows += ["", f"Change reaches the master {phases['change_at_master']:.2f} s after the push; the release build "
             f"starts at {phases['release_starts']:.2f} s"
             + (f"; the coordinator resumes {resumes:.2f} s after the last platform ends" if resumes is not None else "")
             + f"; published {phases['total']:.2f} s after the push. Coordinator steps: {coordinator}."]
    return rows


def side_notes(results: dict[str, Any]) -> list[str]:
    """One line each for figures that live in a metric's extra fields."""
    notes = []
    c = results.get("concurrent_releases")
    if c:
        notes.append(f"Concurrent releases: {c.get('completed')} of 5 completed; master CPU "
                     f"{c.get('master_cpu_s_per_release')} s a release (one alone: {c.get('baseline_master_cpu_s')} "
                     f"s), plus {c.get('children_cpu_s_per_release')} s in its child processes "
                     f"(alone: {c.get('baseline_children_cpu_s')} s).")
    k = results.get("container_start_s", {}).get("breakdown_s")
    if k:
        notes.append(f"Container start, s after the build request (medians): container created {k['created']}, "
                     f"started {k['started']}, worker connected {k['connected']}, build record "
                     f"{k['build_new']}, first step {results['container_start_s']['velofarm']}.")
    w = results.get("warm_rebuild_ratio")
    if w:
        notes.append(f"Warm rebuild: cargo step alone {w.get('cargo_warm_s')} s warm, {w.get('cargo_cold_s')} s cold; "
                     f"archives byte-identical: {'yes' if w.get('identical') else 'NO'}.")
    return notes


def write(results: dict[str, Any], run_note: str) -> None:
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    text = MARKDOWN.read_text(encoding="utf-8") if MARKDOWN.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    MARKDOWN.write_text(head + markdown_block(results, run_note) + tail, encoding="utf-8")
