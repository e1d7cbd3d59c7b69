"""The scripts the master sends to every worker with each build, in the order a build runs them:
preflight (before the build: version, toolchain, build command and environment), gates (after
it: smoke, size), stage (binaries and ship entries into one folder), pack (deterministic archive,
checksum) and transfer (the streamed upload to the master).

The contract, held by tests/test_layout.py:
- standard library only: a worker has buildbot-worker and its toolchain, nothing of velofarm;
- Python 3.9 or newer (the oldest Python a supported worker OS ships; no `match`, no `X | Y`
  at run time, `from __future__ import annotations` for hints);
- each file runs alone (`python3 preflight.py ...`): no file imports another of these, nor
  anything from `velofarm`. So the few lines that read the job file are repeated in each tool
  that needs it (each with its own error type); tests/test_layout.py checks the copies agree.

The master and the tests also import them (`from velofarm.worker_tools import pack`), so the
code a worker runs and the code the master checks with are the same file.
"""
