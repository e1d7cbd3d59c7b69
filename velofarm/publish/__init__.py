"""Publishers: where a verified release goes. One interface, chosen in farm.toml.

Runs in the master process (the publish step, in a thread) and `velofarm publish`. Pure: plain
HTTP clients on the standard library; never Buildbot.

Entry points: `select.publisher_for(spec, token)`; `directory.DirectoryPublisher`;
`github.GitHubPublisher`; `gitea.GiteaPublisher` (Gitea and Forgejo), both on `forge.DraftReconciler`
(the draft and its assets, forge-neutral); `links` (each asset's download URL,
computed before publishing); `download` (fetch a published release for `velofarm verify`).
"""
