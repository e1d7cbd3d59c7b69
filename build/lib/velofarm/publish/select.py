"""Pick the publisher farm.toml names (core: no Buildbot)."""

from __future__ import annotations

from typing import Any, Callable

from velofarm.errors import PublishError
from velofarm.publish.directory import DirectoryPublisher
from velofarm.spec.farm import Spec


def publisher_for(spec: Spec, token: str | None, log: Callable[[str], None] = print) -> Any:
    """The configured publisher; the GitHub token comes from the secrets provider, never the environment."""
    if spec.release.publisher == "directory":
        return DirectoryPublisher(spec.resolve(spec.release.directory))
    if not token:
        raise PublishError(f"publisher github: no token; store it in the secrets folder as "
                           f"'{spec.release.github_token_secret}' (mode 0600)")
    from velofarm.publish.github import GitHubPublisher
    return GitHubPublisher(spec.release.github_repo, token, api_url=spec.release.github_api_url, log=log)
