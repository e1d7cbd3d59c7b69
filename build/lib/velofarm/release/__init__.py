"""Release logic: the artifact set, its verification, SHA256SUMS, notes, release.json, Releases data.

Runs in the master process (the release coordinator's steps, in a thread) and the `velofarm`
command (`verify`, `publish`). Pure: standard library, the shared leaves, `velofarm.spec`,
`velofarm.tags`; never Buildbot.

Entry points: `assemble.assemble_release()`; `verify.verify_release()` / `verify.load_release()`;
`dashboard_data` (what the Releases page shows, from Buildbot's database rows).
"""
