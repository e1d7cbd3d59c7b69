"""Test helpers, not tests: the GitHub stand-in (and its faults and API description) and the
helpers that read a running farm through its REST API. Everything here lives in the repository, so
the suite runs in a bare clone."""
