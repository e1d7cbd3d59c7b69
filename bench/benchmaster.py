"""The benchmarks' own Buildbot master: velofarm's pieces beside plain Buildbot's, same process.

- up-velofarm-{near,far}: UploadArtifact (transfer.py → the upload receiver, hashed on receipt).
- up-fileupload-{512k,640k}-{near,far}: FileUpload of the archive and its .sha256, then
  CommitArtifacts (a second read to verify), the farm's path before uploads.py.
- fan-parent-{velofarm,plain}: ReleaseTrigger / Trigger of fan-child-1..N, each `sleep`.
`near` workers connect directly; `far` ones through bench/proxy.py (PB and uploads both).
Stamp steps record time.time() in properties around what is measured, and EventRecorder the
time of every build and step event. Parameters come from params.json beside master.cfg.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from buildbot.plugins import schedulers, steps, util, worker
from buildbot.process.buildstep import BuildStep
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from bench.events import EventRecorder
from velofarm.artifacts.store import BuildIdentity, commit_incoming
from velofarm.buildmaster.steps import ReleaseTrigger
from velofarm.buildmaster.toolsteps import SendTools
from velofarm.buildmaster.uploads import UploadArtifact, UploadReceiver
from velofarm.errors import VelofarmError

MASTER_CFG = '''from bench.benchmaster import config
BuildmasterConfig = config(basedir)  # noqa: F821 (Buildbot provides basedir)
'''
BLOCKSIZES = {"512k": 512 * 1024, "640k": 640 * 1024}


class Stamp(BuildStep):
    """Records the master's clock in property t_<label> (the measured span's edges)."""

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(name=f"t_{label}", **kwargs)
        self.label = label

    def run(self) -> Any:
        self.setProperty(f"t_{self.label}", time.time(), "bench")
        return defer.succeed(SUCCESS)



# The farm's artifact path before uploads.py (FileUpload, then a second read to verify):
# kept here as the baseline the benchmarks measure against.
class CommitArtifacts(BuildStep):
    """Checks what the worker uploaded and moves it into the artifact store in one rename."""

    renderables = ["archive"]

    def __init__(self, artifacts_root: str, platform: str, archive: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.artifacts_root = artifacts_root
        self.platform = platform
        self.archive = archive

    @defer.inlineCallbacks
    def run(self) -> Any:
        log = yield self.addLog("stdio")
        tag = self.getProperty("tag")
        try:
            # The FileUpload path names its incoming folder by build number (one builder per link).
            record = BuildIdentity(tag=tag, platform=self.platform, build_id=self.build.number,
                                 build_number=self.build.number, builder=self.build.builder.name,
                                 worker=self.build.workerforbuilder.worker.workername, commit="",
                                 archive=str(self.archive))
            final = yield threads.deferToThread(commit_incoming, Path(self.artifacts_root), record)
        except VelofarmError as exc:
            yield log.addStderr(f"error: {exc}\n")
            self.descriptionDone = ["artifact rejected"]
            return FAILURE
        yield log.addStdout(f"stored {final}\n")
        self.setProperty("artifact", str(final), "CommitArtifacts")
        return SUCCESS

def _velofarm_upload(p: dict[str, Any], link: str) -> util.BuildFactory:
    f = util.BuildFactory()
    f.addStep(SendTools({"format": 1}, workerdest="../tools/velofarm-tools.pyz", name="send tools"))
    f.addStep(Stamp("t0"))
    f.addStep(UploadArtifact(name="store artifact", artifacts_root=p["artifacts"], platform=f"bench-{link}",
                             archive=util.Property("archive"), source_dir=p["data"], python=sys.executable,
                             workdir="build", haltOnFailure=True))
    f.addStep(Stamp("t1"))
    return f


def _fileupload(p: dict[str, Any], link: str, blocksize: int) -> util.BuildFactory:
    incoming = util.Interpolate(f"{p['artifacts']}/%(prop:tag)s/.incoming-bench-{link}-%(prop:buildnumber)s")
    f = util.BuildFactory()
    f.addStep(Stamp("t0"))
    for suffix in ("", ".sha256"):
        f.addStep(steps.FileUpload(
            name=f"upload{suffix}", workersrc=util.Interpolate(f"{p['data']}/%(prop:archive)s{suffix}"),
            masterdest=util.Interpolate(f"%(kw:d)s/%(prop:archive)s{suffix}", d=incoming),
            blocksize=blocksize, haltOnFailure=True, workdir="build"))
    f.addStep(CommitArtifacts(name="store artifact", artifacts_root=p["artifacts"], platform=f"bench-{link}",
                              archive=util.Property("archive"), haltOnFailure=True))
    f.addStep(Stamp("t1"))
    return f


def _fanout(p: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    builders, children = [], [f"fan-child-{i}" for i in range(1, p["fan_children"] + 1)]
    for i, name in enumerate(children, 1):
        f = util.BuildFactory()
        f.addStep(Stamp("c0"))
        f.addStep(steps.ShellCommand(name="work", command=["sleep", str(p["fan_sleep"])]))
        f.addStep(Stamp("c1"))
        builders.append(util.BuilderConfig(name=name, workernames=[f"fan-{i}"], factory=f,
                                           collapseRequests=False))
    for kind, cls in (("velofarm", ReleaseTrigger), ("plain", steps.Trigger)):
        f = util.BuildFactory()
        f.addStep(Stamp("p0"))
        f.addStep(cls(name="build platforms", schedulerNames=["fan-children"], waitForFinish=True,
                      haltOnFailure=True, updateSourceStamp=False,
                      set_properties={"tag": util.Property("tag")}))
        f.addStep(Stamp("p1"))
        builders.append(util.BuilderConfig(name=f"fan-parent-{kind}", workernames=["coord"], factory=f,
                                           collapseRequests=False))
    scheds = [schedulers.Triggerable(name="fan-children", builderNames=children)]
    return builders, scheds


def _builders(p: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    if p.get("plain"):  # only workers and one builder: plain Buildbot's own footprint
        f = util.BuildFactory([steps.ShellCommand(command=["true"])])
        return [util.BuilderConfig(name="noop", workernames=list(p["workers"]), factory=f)], []
    builders = []
    for link in ("near", "far"):
        builders.append(util.BuilderConfig(name=f"up-velofarm-{link}", workernames=[link],
                                           collapseRequests=False, factory=_velofarm_upload(p, link)))
        for label, size in BLOCKSIZES.items():
            builders.append(util.BuilderConfig(name=f"up-fileupload-{label}-{link}", workernames=[link],
                                               collapseRequests=False, factory=_fileupload(p, link, size)))
    fan_builders, scheds = _fanout(p)
    return builders + fan_builders, scheds


def config(basedir: str) -> dict[str, Any]:
    p = json.loads((Path(basedir) / "params.json").read_text(encoding="utf-8"))
    builders, scheds = _builders(p)
    names = [b.name for b in builders]
    scheds.append(schedulers.ForceScheduler(
        name="force", builderNames=names,
        properties=[util.StringParameter(name="tag", default="b0"),
                    util.StringParameter(name="archive", default="")]))
    workers: list[Any] = [worker.LocalWorker("coord", max_builds=16)]
    workers += [worker.Worker(name, w["password"], max_builds=4, properties=w.get("properties", {}))
                for name, w in p["workers"].items()]
    return {
        "title": "velofarm bench", "buildbotURL": f"http://127.0.0.1:{p['www_port']}/",
        "buildbotNetUsageData": None,
        "protocols": {"pb": {"port": f"tcp:{p['pb_port']}:interface=127.0.0.1"}},
        "db": {"db_url": "sqlite:///state.sqlite"},
        "workers": workers, "builders": builders, "schedulers": scheds,
        "www": {"port": f"tcp:{p['www_port']}:interface=127.0.0.1", "plugins": p.get("www_plugins", {})},
        "services": [] if p.get("plain") else [UploadReceiver(port=p["upload_port"], interface="127.0.0.1"),
                                               EventRecorder(path=str(Path(basedir) / "events.jsonl"))],
        "collapseRequests": False,
    }
