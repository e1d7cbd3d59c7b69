"""Which refs start a release: semantic versions, the tag policy, webhook payloads and signatures.

Runs in the master process and the `velofarm` command. Pure: standard library and the shared
leaves only, never Buildbot (the hook's PB client lives in `velofarm.buildmaster.hookclient`).

Entry points: `semver.parse_tag(tag)`; `tagpolicy.decide(spec, ref)` (release or ignore, with the
reason); `gitrefs.tag_commit(repo, tag)`; `webhook.verify_signature()` / `webhook.parse_event()`;
`notify.pushed_tags()` / `notify.install_hook()` and `notify.CHANGE_USER`.
"""
