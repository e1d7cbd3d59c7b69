#!/usr/bin/env python3
"""Run one worker tool from the tools bundle: `python velofarm-tools.pyz TOOL ARGS...`.

Standard library only, Python 3.9+. The master sends each build one zip (velofarm/spec/
toolbundle.py): this file as its __main__.py, the tools beside it, and the build's job.json,
which the tools read when given the bundle's path as JOB. One download instead of one per file,
and each tool is still a file of its own that runs alone (`python3 pack.py ...`).
Also `python -m velofarm.worker_tools TOOL ARGS...` on a machine with velofarm installed.
"""

from __future__ import annotations

import os
import runpy
import sys

TOOLS = ("preflight", "gates", "stage", "pack", "transfer")


def main(argv: list[str]) -> int:
    prog = os.path.basename(argv[0]) if argv else "velofarm-tools.pyz"
    if len(argv) < 2 or argv[1] not in TOOLS:
        out = sys.stdout if len(argv) == 2 and argv[1] in ("-h", "--help") else sys.stderr
        print(f"usage: {prog} TOOL [ARGS...]\n\nTOOL is one of {', '.join(TOOLS)}; "
              f"`{prog} TOOL --help` says what it takes.", file=out)
        return 0 if out is sys.stdout else 2
    tool = argv[1]
    sys.argv = [f"{tool}.py", *argv[2:]]
    # In the zip the tools are top-level modules; installed, they are velofarm.worker_tools.<tool>.
    module = f"{__package__}.{tool}" if __package__ else tool
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0  # a tool ends with sys.exit(its code); reaching here means it returned normally


if __name__ == "__main__":
    sys.exit(main(sys.argv))
