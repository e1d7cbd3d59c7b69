"""The scripts the master sends to every worker with each build, in the order a build runs them:
preflight (before the build: version, toolchain, commit time, build environment), gates (after
it: smoke, size), stage (binaries and ship entries into one folder), pack (deterministic archive,
checksum) and transfer (the streamed upload to the master, hashing as it goes).

They travel as one zip, the tools bundle (velofarm/spec/toolbundle.py), with the build's
job.json inside: `python velofarm-tools.pyz TOOL ARGS...` runs a tool through __main__.py, and
a tool given the bundle as its JOB reads the job from it. One download per build, not six.

The contract, held by tests/test_layout.py:
- standard library only: a worker has buildbot-worker and its toolchain, nothing of velofarm;
- Python 3.9 or newer (the oldest Python a supported worker OS ships; no `match`, no `X | Y`
  at run time, `from __future__ import annotations` for hints);
- each file runs alone (`python3 preflight.py ...`): no file imports another of these, nor
  anything from `velofarm` (__main__.py only runs the one named, by module name). So the few
  lines that read the job file are repeated in each tool that needs it (each with its own error
  type); tests/test_layout.py checks the copies agree.

The master and the tests also import them (`from velofarm.worker_tools import pack`), so the
code a worker runs and the code the master checks with are the same file.
"""
