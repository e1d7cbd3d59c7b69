"""The master's artifact path, without Buildbot: upload grants, the receiver, the artifact store.

Runs in the master process (the receiver in its own threads). Pure: standard library, the shared
leaves and `velofarm.release.checksums`; the Buildbot layer (`buildmaster/uploads.py`) wires it in.

Entry points: `receiver.start_receiver()` (the HTTP PUT endpoint workers upload to);
`incoming.UploadGrants` (per-build tokens and what each may upload); `store.commit_incoming()` /
`store.incoming_dir()` (an upload becomes `artifacts/<tag>/<platform>/` only when its checksum
matches).
"""
