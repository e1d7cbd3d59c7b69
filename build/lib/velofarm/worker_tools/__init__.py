"""The scripts the master sends to every worker with each build: pack, preflight, transfer.

The contract, held by tests/test_layout.py:
- standard library only: a worker has buildbot-worker and its toolchain, nothing of velofarm;
- Python 3.9 or newer (the oldest Python a supported worker OS ships; no `match`, no `X | Y`
  at run time, `from __future__ import annotations` for hints);
- each file runs alone (`python3 preflight.py ...`): no file imports another of these, nor
  anything from `velofarm`.

The master and the tests also import them (`from velofarm.worker_tools import pack`), so the
code a worker runs and the code the master checks with are the same file.
"""
