"""Pick the publisher farm.toml names (core: no Buildbot)."""

from __future__ import annotations

from typing import Any, Callable

from velofarm.errors import PublishError
from velofarm.publish.directory import DirectoryPublisher
from velofarm.spec.farm import Spec


def publisher_for(spec: Spec, token: str | None, log: Callable[[str], None] = print) -> Any:
    """The configured publisher; a forge token comes from the secrets provider, never the environment."""
    if spec.release.publisher == "directory":
        return DirectoryPublisher(spec.resolve(spec.release.directory))
    if not token:
        raise PublishError(f"publisher {spec.release.publisher}: no token; store it in the secrets folder as "
                           f"'{token_secret(spec)}' (mode 0600)")
    if spec.release.publisher == "gitea":
        from velofarm.publish.gitea import GiteaPublisher
        return GiteaPublisher(spec.release.gitea_url, spec.release.gitea_repo, token, log=log,
                              token_secret=spec.release.gitea_token_secret)
    from velofarm.publish.github import GitHubPublisher
    return GitHubPublisher(spec.release.github_repo, token, api_url=spec.release.github_api_url, log=log)


def token_secret(spec: Spec) -> str | None:
    """The name of the secret holding the configured publisher's token (None: it needs none)."""
    return {"github": spec.release.github_token_secret,
            "gitea": spec.release.gitea_token_secret}.get(spec.release.publisher)
