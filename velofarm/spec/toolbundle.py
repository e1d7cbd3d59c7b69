"""The tools bundle: the worker tools and one build's job in one zip the worker's Python runs.

    python velofarm-tools.pyz preflight check velofarm-tools.pyz --tag v1.2.3

A zipapp (PEP 441): worker_tools/__main__.py dispatches to the tool named first; a tool given
the bundle as its JOB reads the job.json inside it. The bytes depend only on the tools' source
and the job (sorted members, fixed dates and modes), so the same farm sends the same bundle.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import velofarm.worker_tools

BUNDLE_NAME = "velofarm-tools.pyz"
JOB_MEMBER = "job.json"  # the name every tool's load_job looks for inside the bundle
TOOLS_DIR = Path(velofarm.worker_tools.__file__).resolve().parent
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip holds: no build's clock reaches the bytes


def bundled_files() -> list[str]:
    """The member names: __main__.py, each tool, job.json (the package's __init__ is not a tool)."""
    tools = sorted(p.name for p in TOOLS_DIR.glob("*.py") if p.name != "__init__.py")
    return [*tools, JOB_MEMBER]


def tools_bundle(job: dict[str, Any]) -> bytes:
    """The zip for one build: the worker tools as they are in this velofarm, and `job`."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for name in bundled_files():
            data = (json.dumps(job, indent=1, sort_keys=True) + "\n").encode("utf-8") if name == JOB_MEMBER \
                else (TOOLS_DIR / name).read_bytes()
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = 3  # unix: the mode below, whatever the master's OS
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data, compresslevel=9)
    return out.getvalue()


def write_bundle(job: dict[str, Any], folder: Path) -> Path:
    """Write the bundle into `folder` (a temporary name, then renamed) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path, tmp = folder / BUNDLE_NAME, folder / f".{BUNDLE_NAME}.tmp"
    tmp.write_bytes(tools_bundle(job))
    tmp.replace(path)
    return path
