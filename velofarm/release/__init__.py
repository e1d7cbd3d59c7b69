"""Release logic: the artifact set, its verification, SHA256SUMS, notes, release.json, Releases data.

Runs in the master process (the release coordinator's steps, in a thread) and the `velofarm`
command (`verify`, `publish`, `keys`). Pure: standard library, the shared leaves, `velofarm.spec`,
`velofarm.tags`, plus `cryptography` (signing) and `cyclonedx-python-lib` (the SBOM); never Buildbot.

Entry points: `assemble.assemble_release()` (and `python -m velofarm.release.assemble`, which the
release coordinator runs); `verify.verify_release()` / `verify.load_release()`;
`dashboard_data` (what the Releases page shows, from Buildbot's database rows);
`changelog.release_changes()` / `changes_of()` (what changed, from `history.GitHistory`: plain git
through subprocess; `python -m velofarm.release.changelog` is the coordinator's changelog step);
`plan.make_plan()` (`velofarm plan`); `keys` (init, rotate, load), `attest.load_trust()` + `attest`
(SBOM, provenance, signatures, written during assembly), `trustcheck.check_trust()` (what `verify`
checks with the public keys).
"""
