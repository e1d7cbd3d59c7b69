"""The farm spec: farm.toml + the platform catalogue + the worker registry -> `Spec` -> a worker's job.

Runs in the master process, the `velofarm` command and the tests. Pure: imports only the
standard library and the shared leaves (`velofarm.errors`, `velofarm.names`), never Buildbot.

Entry points: `farm.load_spec(path)` / `farm.parse_spec(data)` -> `Spec`;
`platforms.catalogue()` (the data in catalogue.toml and targets.txt);
`registry.read_registry(path)` (workers/registry.toml); `job.build_job(spec, platform)` (the JSON a
worker's tools read) and `job.archive_name(...)` (the one place an archive is named);
`tomlwrite.dumps()` for the files velofarm writes back.
"""
