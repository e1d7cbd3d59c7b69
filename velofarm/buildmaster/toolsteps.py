"""Worker-tool steps: the one download of the tools, and steps whose summary in the UI says what
happened, not which interpreter ran.

The worker tools (preflight.py, pack.py) end with a line `summary: ...`; a failing tool ends
with `error: <cause>; <fix>` on stderr. The step shows the last summary line, else the cause
of the error, else its own name: never the command line with the worker's Python path.
"""

from __future__ import annotations

import json
import re
from typing import Any

from buildbot.process import logobserver
from buildbot.process.results import FAILURE, SUCCESS
from buildbot.steps.shell import ShellCommand
from buildbot.steps.transfer import StringDownload
from twisted.internet import defer

from velofarm.spec.toolbundle import JOB_MEMBER, bundled_files, tools_bundle

SUMMARY = "summary: "
ERROR = "error: "
PROPERTIES = "properties: "  # preflight.py check's line of the properties it computed (one JSON object)
MAX_SUMMARY = 160  # Buildbot keeps step summaries in a 255-character column; the UI shows one line
# The context a tool puts in front of an error ("tag v1.2.3, platform linux-x86_64: "): the build
# page already says both, so the summary starts with the cause.
CONTEXT = re.compile(r"^(tag [^,:;]+, )?platform [^:;]+: |^tag [^,:;]+: ")


def summary_from_output(stdout: str, stderr: str) -> str:
    """The summary a tool's output gives: its last `summary:` line, else the cause of its error."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(SUMMARY):
            return _short(line[len(SUMMARY):])
    for line in reversed(stderr.splitlines()):
        if line.startswith(ERROR):
            return _short(failure_cause(line[len(ERROR):]))
    return ""


def failure_cause(message: str) -> str:
    """'tag v1, platform p: ship entry 'configs' is missing ...; add it' -> "ship entry 'configs' is missing ..."."""
    cause = CONTEXT.sub("", message.strip(), count=1)
    return cause.split("; ", 1)[0]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SUMMARY else text[:MAX_SUMMARY - 1] + "…"


class ToolCommand(ShellCommand):
    """A ShellCommand running a worker tool; its summary comes from the tool's own last words."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("description", [kwargs.get("name", "running")])
        # The tool's own lines, not the worker's whole environment, open the log: the cause of a
        # failure is then on the first screen of the log viewer.
        kwargs.setdefault("logEnviron", False)
        super().__init__(**kwargs)
        self.output = logobserver.BufferLogObserver(wantStdout=True, wantStderr=True)
        self.addLogObserver("stdio", self.output)

    @defer.inlineCallbacks
    def run(self) -> Any:
        results = yield super().run()
        summary = summary_from_output(self.output.getStdout(), self.output.getStderr())
        # Without a summary line the step's name is better than the command (an interpreter path).
        self.descriptionDone = [summary or (self.name if results == SUCCESS else f"{self.name} failed")]
        return results


def properties_from_output(stdout: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The `properties:` line's values, only those named in `allowed` (a worker sets no others);
    {} when there is no such line or it is not a JSON object."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(PROPERTIES):
            try:
                found = json.loads(line[len(PROPERTIES):])
            except ValueError:
                return {}
            return {k: v for k, v in found.items() if k in allowed} if isinstance(found, dict) else {}
    return {}


class PreflightCommand(ToolCommand):
    """The one preflight call (preflight.py check): its summary names each check's outcome, and its
    `properties:` line sets the build properties the later steps use (`sets`, all of them or fail)."""

    def __init__(self, sets: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.sets = tuple(sets)
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self) -> Any:
        results = yield super().run()
        if results != SUCCESS:
            return results
        found = properties_from_output(self.output.getStdout(), self.sets)
        missing = [name for name in self.sets if name not in found]
        if missing:
            yield self.addCompleteLog("error", f"error: the preflight printed no {', '.join(missing)}; the worker's "
                                               "tools bundle is not this master's: rebuild\n")
            self.descriptionDone = [f"preflight gave no {', '.join(missing)}"]
            return FAILURE
        for name, value in found.items():
            self.setProperty(name, value, self.name)
        return results


class SendTools(StringDownload):
    """One download per build: the tools bundle (spec/toolbundle.py), every worker tool and `job`."""

    def __init__(self, job: dict[str, Any], workerdest: str, **kwargs: Any) -> None:
        self.job = job
        self.bundled = bundled_files()
        # One block (under Twisted Banana's 640 KiB message cap): the bundle in one round trip.
        kwargs.setdefault("blocksize", 512 * 1024)
        super().__init__(tools_bundle(job), workerdest=workerdest, **kwargs)

    @defer.inlineCallbacks
    def run(self) -> Any:
        results = yield super().run()
        if results == SUCCESS:
            tools = [name for name in self.bundled if name not in ("__main__.py", JOB_MEMBER)]
            self.descriptionDone = [f"sent {len(tools)} tools and the job ({len(self.s) // 1024} KiB)"]
        return results
