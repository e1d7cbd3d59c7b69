"""Artifact transfer worker → master, and the master's memory while 1 GiB flows through it.

Each run is a real build on the bench master: from the first transfer step to the artifact
verified in the store (Stamp t0 → t1). velofarm: UploadArtifact (one streamed PUT, hashed on
receipt). Baseline: FileUpload of the archive and its .sha256 at Buildbot's best working block
size, then CommitArtifacts (a second read to verify), as the farm did before.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import threading
import time
from typing import Any

from bench.lab import Lab
from bench.procs import force, prop, rss_mib, wait_build
from bench.stats import repeat

MIB = 1024 * 1024
BLOCKS = ("512k", "640k")


def make_payload(lab: Lab, mib: int) -> str:
    """An incompressible archive of `mib` MiB and its .sha256 in the lab's data folder."""
    name = f"payload-{mib}m.tar.gz"
    path = lab.data / name
    if not path.exists():
        block = os.urandom(MIB)
        digest = hashlib.sha256()
        with open(path, "wb") as fh:
            for i in range(mib):
                chunk = hashlib.sha256(block + i.to_bytes(4, "little")).digest() * (MIB // 32)
                fh.write(chunk)
                digest.update(chunk)
        (lab.data / f"{name}.sha256").write_text(f"{digest.hexdigest()}  {name}\n", encoding="utf-8")
    return name


class Runs:
    """Numbers each build's tag so every run stores into a fresh folder, then frees it."""

    def __init__(self, lab: Lab) -> None:
        self.lab, self.count = lab, 0

    def upload(self, builder: str, archive: str) -> float:
        self.count += 1
        tag = f"b{self.count}"
        brid = force(self.lab.www_port, "force", builder, tag=tag, archive=archive)
        build = wait_build(self.lab.www_port, brid, events=self.lab.root / "master" / "events.jsonl")
        shutil.rmtree(self.lab.artifacts / tag, ignore_errors=True)
        return float(prop(build, "t_t1")) - float(prop(build, "t_t0"))


class RssSampler:
    """Samples a process's RSS every 20 ms in a thread; max delta from the value at start."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [rss_mib(pid)], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append(rss_mib(self.pid))

    def __enter__(self) -> RssSampler:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def delta(self) -> float:
        return max(abs(s - self.samples[0]) for s in self.samples)


def alternate(runs: Runs, builders: tuple[str, ...], archive: str, most: int, deadline: float,
              least: int = 1) -> dict[str, list[float]]:
    """Each builder once a repetition, in turn, so that load drifts hit all alike: seconds each."""
    done = repeat(lambda i: [runs.upload(b, archive) for b in builders], most, deadline, least)
    return {b: [d[j] for d in done] for j, b in enumerate(builders)}


def measure(lab: Lab, reps: dict[str, int], emit: Any, deadline: float) -> dict[str, Any]:
    """Every transfer case for both mechanisms, and master RSS over 1 GiB through each.

    FileUpload runs at 512 KiB and 640 KiB (Banana's limit; 1 MiB fails) for 32 MiB on each link;
    the faster one there is its "best working block size" for that link's 256 MiB run. Each case
    keeps every repetition's seconds (`*_all`); the loopback 256 MiB case always runs 4 times
    (1 GiB through the master), the others as many of `reps` as fit before `deadline`.
    """
    runs = Runs(lab)
    small, big = make_payload(lab, 32), make_payload(lab, 256)
    warmups = ("up-velofarm-near", "up-velofarm-far", "up-fileupload-512k-near", "up-fileupload-640k-near")
    for builder in warmups:
        runs.upload(builder, small)  # warm-up: first-build costs stay out of the numbers
    out: dict[str, Any] = {}
    tiny = make_payload(lab, 1)  # nearly all fixed cost: steps, worker process, round trips
    out["fixed_1m"] = {"velofarm": statistics.median(runs.upload("up-velofarm-near", tiny) for _ in range(3)),
                       "baseline": statistics.median(runs.upload("up-fileupload-512k-near", tiny) for _ in range(3))}
    emit(f"  loopback 1 MiB (fixed cost): velofarm {out['fixed_1m']['velofarm']:.2f} s, "
         f"FileUpload {out['fixed_1m']['baseline']:.2f} s")
    links = (("near", "loopback"), ("far", "rtt50"))
    for n_link, (link, key) in enumerate(links):
        share = deadline - (deadline - time.monotonic()) * (len(links) - n_link - 1) / (len(links) - n_link)
        by_builder = alternate(runs, (f"up-velofarm-{link}", *(f"up-fileupload-{b}-{link}" for b in BLOCKS)),
                               small, reps[f"{key}_32"], share)
        velofarm = by_builder[f"up-velofarm-{link}"]
        by_block = {label: by_builder[f"up-fileupload-{label}-{link}"] for label in BLOCKS}
        block = min(by_block, key=lambda k: statistics.median(by_block[k]))
        out[f"transfer_{key}_32m"] = {"mib": 32, "velofarm_all": velofarm, "baseline_all": by_block[block],
                                      "blocksize": block,
                                      "by_blocksize_s": {k: statistics.median(v) for k, v in by_block.items()}}
        emit(f"  {key} 32 MiB: velofarm {statistics.median(velofarm):.2f} s, FileUpload "
             + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in by_block.items()))
        n = reps[f"{key}_256"]
        mechanisms = (("velofarm", f"up-velofarm-{link}"), ("baseline", f"up-fileupload-{block}-{link}"))
        pair = {}
        for mech, builder in mechanisms:
            with RssSampler(lab.master.pid) as rss:  # loopback: 4 x 256 MiB = 1 GiB through the master
                times = alternate(runs, (builder,), big, n, share, least=n if key == "loopback" else 1)[builder]
            if key == "loopback":
                out[f"rss_delta_{mech}"] = rss.delta
                out[f"rss_base_{mech}"] = rss.samples[0]
            pair[mech] = times
        out[f"transfer_{key}_256m"] = {"mib": 256, "velofarm_all": pair["velofarm"],
                                       "baseline_all": pair["baseline"], "blocksize": block}
        emit(f"  {key} 256 MiB: velofarm {statistics.median(pair['velofarm']):.2f} s, "
             f"FileUpload {block} {statistics.median(pair['baseline']):.2f} s")
    return out
