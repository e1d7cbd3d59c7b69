"""The house rules hold for the tree (tests/support/layout_rules.py says which), the checker catches
each broken rule on a small synthetic tree, and every worker tool runs alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from support.layout_rules import LEAVES, MAX_LINES, ROOMS, layout_problems, modules

from velofarm.spec.farm import load_spec
from velofarm.spec.job import build_job
from velofarm.spec.toolbundle import BUNDLE_NAME, JOB_MEMBER, bundled_files, tools_bundle, write_bundle
from velofarm.worker_tools import gates, preflight, stage
from velofarm.worker_tools.__main__ import TOOLS as BUNDLE_TOOLS

REPO = Path(__file__).resolve().parent.parent
WORKER_TOOLS = sorted(p for p in (REPO / "velofarm" / "worker_tools").glob("*.py") if p.name != "__init__.py")
JOB_READERS = {preflight: preflight.PreflightError, gates: gates.GateError, stage: stage.StageError}


def test_the_tree_keeps_the_house_rules() -> None:
    assert layout_problems(REPO) == []


def test_the_tree_is_the_layout() -> None:
    found = {m.room for m in modules(REPO) if m.room}
    assert found == {*ROOMS, *LEAVES}, "README's Layout names exactly these rooms and leaves"


def synthetic_tree(root: Path) -> Path:
    """A small velofarm/ that keeps every rule."""
    files = {
        "velofarm/__init__.py": '"""The package."""\n',
        "velofarm/errors.py": "class VelofarmError(Exception):\n    pass\n",
        "velofarm/names.py": "import re\n\nfrom velofarm.errors import VelofarmError\n",
        "velofarm/tags/__init__.py": "",
        "velofarm/tags/semver.py": "from __future__ import annotations\n\nimport re\n\nfrom velofarm.errors import VelofarmError\n",
        "velofarm/worker_tools/__init__.py": "",
        "velofarm/worker_tools/pack.py": "from __future__ import annotations\n\nimport json\nimport tarfile\n",
        "velofarm/buildmaster/__init__.py": "",
        "velofarm/buildmaster/steps.py": "from buildbot.plugins import steps\nfrom twisted.internet import defer\n"
                                         "from velofarm.tags.semver import parse_tag\n",
        "velofarm/cli/__init__.py": "",
        "velofarm/cli/main.py": "from velofarm.buildmaster import steps\nfrom velofarm.tags import semver\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


BROKEN = {  # file, what is added to it, what the checker must say
    "the core imports buildbot": ("velofarm/tags/semver.py", "import buildbot\n",
                                  "velofarm/tags/semver.py:6: imports buildbot: only velofarm/buildmaster/"),
    "the core imports twisted in a function": (
        "velofarm/tags/semver.py", "def f():\n    from twisted.internet import reactor\n",
        "velofarm/tags/semver.py:7: imports twisted.internet: only velofarm/buildmaster/"),
    "the face imports buildbot directly": ("velofarm/cli/main.py", "import buildbot_worker.bot\n",
                                           "velofarm/cli/main.py:3: imports buildbot_worker.bot: only"),
    "a worker tool imports a package": ("velofarm/worker_tools/pack.py", "import requests\n",
                                        "pack.py:5: imports requests: a worker tool imports only the standard"),
    "a worker tool imports velofarm": ("velofarm/worker_tools/pack.py", "from velofarm.errors import X\n",
                                       "pack.py:5: imports velofarm.errors: a worker tool imports only"),
    "a worker tool imports its neighbour": ("velofarm/worker_tools/pack.py", "from . import stage\n",
                                            "pack.py:5: imports velofarm.worker_tools: a worker tool"),
    "a worker tool needs Python 3.10": ("velofarm/worker_tools/pack.py", "match 1:\n    case 1:\n        pass\n",
                                        "pack.py:7: not valid Python 3.9: Pattern matching"),
    "the core imports the Buildbot layer": ("velofarm/tags/semver.py", "from velofarm.buildmaster.changes import X\n",
                                            "semver.py:6: imports velofarm.buildmaster.changes: a pure module never"),
    "a leaf imports the face": ("velofarm/names.py", "import velofarm.cli.main\n",
                                "names.py:4: imports velofarm.cli.main: a pure module never"),
    "a leaf imports a room": ("velofarm/names.py", "from velofarm.tags.semver import parse_tag\n",
                              "names.py:4: imports velofarm.tags.semver: a shared leaf imports only"),
    "the Buildbot layer imports the face": ("velofarm/buildmaster/steps.py", "from velofarm.cli import main\n",
                                            "steps.py:4: imports velofarm.cli: imports run one way"),
    "a module is too long": ("velofarm/tags/semver.py", "x = 1\n" * MAX_LINES, f"semver.py: {MAX_LINES + 5} lines"),
    "a module at the root": ("velofarm/helpers.py", "", "velofarm/helpers.py: the package root holds only"),
    "a room the layout lacks": ("velofarm/misc/util.py", "", "velofarm/misc/ is not a room of the layout"),
}


def test_a_tree_that_keeps_the_rules_passes(tmp_path: Path) -> None:
    assert layout_problems(synthetic_tree(tmp_path)) == []


@pytest.mark.parametrize("case", BROKEN)
def test_the_checker_catches(tmp_path: Path, case: str) -> None:
    name, added, expected = BROKEN[case]
    path = synthetic_tree(tmp_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((path.read_text() if path.exists() else "") + added)
    problems = layout_problems(tmp_path)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("tool", WORKER_TOOLS, ids=lambda p: p.name)
def test_each_worker_tool_runs_alone(tmp_path: Path, tool: Path) -> None:
    # -I -S: no site-packages (so no velofarm), no user site, no PYTHONPATH; the copy is alone.
    copy = tmp_path / tool.name
    shutil.copy(tool, copy)
    result = subprocess.run([sys.executable, "-I", "-S", str(copy), "--help"], capture_output=True, text=True,
                            cwd=tmp_path, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {copy.name}")


@pytest.mark.parametrize("tool", JOB_READERS, ids=lambda t: t.__name__.rsplit(".", 1)[-1])
def test_the_job_readers_agree_with_the_job_the_master_writes(tmp_path: Path, tool: ModuleType) -> None:
    spec = load_spec(REPO / "farm.toml")
    job = build_job(spec, next(iter(spec.platforms.values())))
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    assert tool.load_job(path) == job and tool.JOB_FORMAT == job["format"]
    path.write_text(json.dumps({**job, "format": job["format"] + 1}))
    with pytest.raises(JOB_READERS[tool], match=f"is not job format {job['format']}; the master and this"):
        tool.load_job(path)
    # the tools bundle carries the job: given the bundle, every reader finds the same job in it
    assert tool.JOB_MEMBER == JOB_MEMBER
    assert tool.load_job(write_bundle(job, tmp_path / "bundle")) == job
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()  # a zip without a job.json
    with pytest.raises(JOB_READERS[tool], match="empty.zip cannot be read .*There is no item named 'job.json'"):
        tool.load_job(tmp_path / "empty.zip")


def test_the_bundle_runs_every_tool_alone_and_holds_the_job(tmp_path: Path) -> None:
    # One zip per build (velofarm/spec/toolbundle.py): each tool runs from it, with no velofarm installed.
    spec = load_spec(REPO / "farm.toml")
    job = build_job(spec, next(iter(spec.platforms.values())))
    bundle = write_bundle(job, tmp_path)
    assert bundle.name == BUNDLE_NAME and bundle.read_bytes() == tools_bundle(job)  # the same bytes each time
    assert sorted(bundled_files()) == sorted([p.name for p in WORKER_TOOLS] + [JOB_MEMBER])
    assert sorted(BUNDLE_TOOLS) == sorted(p.stem for p in WORKER_TOOLS if p.name != "__main__.py")
    for tool in BUNDLE_TOOLS:
        result = subprocess.run([sys.executable, "-I", "-S", str(bundle), tool, "--help"], capture_output=True,
                                text=True, cwd=tmp_path, check=False, timeout=60)
        assert result.returncode == 0 and result.stdout.startswith(f"usage: {tool}.py"), (tool, result.stderr)
    (tmp_path / "bin").mkdir()
    result = subprocess.run([sys.executable, "-I", "-S", str(bundle), "gates", "size", str(bundle), "--tag", "v1.0.0",
                             "--bin-dir", str(tmp_path / "bin")], capture_output=True, text=True, cwd=tmp_path,
                            check=False, timeout=60)
    # the job came out of the bundle: the error names its first binary and platform
    first = job["binaries"][0]["name"]
    assert result.returncode == 1 and f"platform {job['platform']['name']}: binary {first}" in result.stderr
    result = subprocess.run([sys.executable, "-I", "-S", str(bundle), "nosuchtool"], capture_output=True, text=True,
                            cwd=tmp_path, check=False, timeout=60)
    assert result.returncode == 2 and "TOOL is one of preflight, gates, stage, pack, transfer" in result.stderr
