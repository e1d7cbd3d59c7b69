"""Steps that run in the master: thin wrappers that call the core."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from buildbot.process.buildstep import BuildStep
from buildbot.process.results import FAILURE, SUCCESS, statusToString
from buildbot.reporters.utils import getURLForBuild
from buildbot.steps.trigger import Trigger
from twisted.internet import defer, threads

from velofarm.errors import VelofarmError


class ReleaseTrigger(Trigger):
    """Triggers every platform build; when any fails, names the platform and links its build."""

    @defer.inlineCallbacks
    def run(self) -> Any:
        results = yield super().run()
        # The next step (records.RecordBuilds) reads these builds from the database for the provenance.
        self.setProperty("platform_buildrequests", list(self.brids), "ReleaseTrigger")
        if results == SUCCESS:
            return results  # nothing to name; the per-build lookups below cost the release ~0.1-0.4 s
        failed = []
        for brid in self.brids:
            builds = yield self.master.db.builds.getBuilds(buildrequestid=brid)
            if not builds:
                continue
            build = builds[-1]  # a retried request has several builds; the last one counts
            if build.results not in (SUCCESS, None):
                builder = yield self.master.data.get(("builders", build.builderid))
                url = getURLForBuild(self.master, build.builderid, build.number)
                failed.append(f"{builder['name']} #{build.number} {statusToString(build.results)}: {url}")
        if failed:
            yield self.addCompleteLog("failed platforms", "\n".join(failed) + "\n")
            names = ", ".join(f.split(" #")[0].removeprefix("build-") for f in failed)
            self.descriptionDone = [f"platform failed: {names}"]
            self.failed_summary = f"platform failed: {names}; nothing published"
        return results

    def getResultSummary(self) -> dict[str, str]:
        summary = getattr(self, "failed_summary", None)
        return {"step": summary} if summary else super().getResultSummary()


class PublishRelease(BuildStep):
    """Publishes the assembled release from the master, with the token from Buildbot's secrets.

    It runs in a thread of the master rather than as a command, so the token is never put in a
    process environment (Buildbot prints a command's environment into its log).
    """

    renderables = ["directory", "token"]

    def __init__(self, spec_path: str, directory: Any, token: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_path = spec_path
        self.directory = directory
        self.token = token

    @defer.inlineCallbacks
    def run(self) -> Any:
        from twisted.internet import reactor

        log = yield self.addLog("stdio")

        def emit(line: str) -> None:
            reactor.callFromThread(log.addStdout, line.rstrip("\n") + "\n")  # type: ignore[attr-defined]

        try:
            outcome = yield threads.deferToThread(publish_release_dir, self.spec_path, self.directory,
                                                  self.token, emit)
        except VelofarmError as exc:
            yield log.addStderr(f"error: {exc}\n")
            self.descriptionDone = ["publish failed"]
            return FAILURE
        yield log.addStdout(f"{outcome.state}: {outcome.location}\n")
        self.setProperty("release_location", outcome.location, "PublishRelease")
        self.setProperty("publish_state", outcome.state, "PublishRelease")
        self.descriptionDone = [outcome.state]
        return SUCCESS


def publish_release_dir(spec_path: str, directory: str, token: str | None, emit: Any) -> Any:
    """Load, verify and publish one release folder (runs in a thread)."""
    from velofarm.publish.select import publisher_for
    from velofarm.release.keys import load_trusted_keys
    from velofarm.release.verify import load_release
    from velofarm.spec.farm import load_spec
    spec = load_spec(spec_path)
    # The signatures, provenance and SBOM are checked against keys/ once more right before
    # anything leaves the master: a tampered staging folder is never published.
    release = load_release(Path(directory), load_trusted_keys(spec.resolve("keys")))
    emit(f"publishing {release.tag} ({len(release.assets)} assets) with the {spec.release.publisher} publisher")
    outcome = publisher_for(spec, token, emit).publish(release)
    for action in outcome.actions:
        emit(f"  {action}")
    return outcome


class ResolveTag(BuildStep):
    """Checks the tag against the release pattern and finds its commit, in the master (no process start)."""

    def __init__(self, repo_url: str, tag_pattern: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo_url = repo_url
        self.tag_pattern = tag_pattern

    @defer.inlineCallbacks
    def run(self) -> Any:
        from velofarm.tags.gitrefs import tag_commit
        from velofarm.tags.tagpolicy import decide

        log = yield self.addLog("stdio")
        decision = decide(self.getProperty("tag") or "", self.tag_pattern)
        if not decision.release:
            yield log.addStderr(f"error: {decision.reason}\n")
            return FAILURE
        try:
            commit = yield threads.deferToThread(tag_commit, self.repo_url, decision.tag)
        except VelofarmError as exc:
            yield log.addStderr(f"error: {exc}\n")
            return FAILURE
        if commit is None:
            yield log.addStderr(f"error: tag {decision.tag} does not exist in {self.repo_url}; push it first\n")
            self.descriptionDone = ["tag not found"]
            return FAILURE
        yield log.addStdout(f"{decision.tag} -> {commit}\n")
        self.setProperty("tag_commit", commit, "ResolveTag")
        self.descriptionDone = [f"{decision.tag} is {commit[:12]}"]
        return SUCCESS


class RecordReleaseFacts(BuildStep):
    """Copies the allow-listed facts of the staged release.json (changelog, signatures, provenance,
    SBOM, reproduced) into the build property `release_facts`, where the Releases page reads them."""

    renderables = ["directory"]

    def __init__(self, directory: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = directory

    @defer.inlineCallbacks
    def run(self) -> Any:
        from velofarm.release.dashboard_data import release_facts
        from velofarm.release.model import RELEASE_JSON

        path = Path(self.directory) / RELEASE_JSON
        try:
            text = yield threads.deferToThread(path.read_text, encoding="utf-8")
            facts = release_facts(json.loads(text))
        except (OSError, ValueError, AttributeError) as exc:
            yield self.addCompleteLog("error", f"error: {path} cannot be read as JSON ({exc}); the assembly "
                                               "step should have written it\n")
            self.descriptionDone = [f"no readable {RELEASE_JSON}"]
            return FAILURE
        self.setProperty("release_facts", facts, "RecordReleaseFacts")
        self.descriptionDone = [f"facts: {', '.join(facts) or 'none recorded'}"]
        return SUCCESS


class CheckSigningKeys(BuildStep):
    """Fails a release in seconds, before any platform builds, when the farm could not sign it:
    a missing or world-readable key, or one that does not match the public keys in keys/."""

    def __init__(self, secrets_dir: str, keys_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.secrets_dir = secrets_dir
        self.keys_dir = keys_dir

    @defer.inlineCallbacks
    def run(self) -> Any:
        from velofarm.release.keys import load_signing_keys, minisign_key_id_hex
        from velofarm.secretstore import SecretStore

        log = yield self.addLog("stdio")
        try:
            keys = yield threads.deferToThread(load_signing_keys, SecretStore(Path(self.secrets_dir)),
                                               Path(self.keys_dir))
        except VelofarmError as exc:
            yield log.addStderr(f"error: {exc}\n")
            self.descriptionDone = ["signing keys unusable"]
            return FAILURE
        yield log.addStdout(f"signing keys match {self.keys_dir} (minisign key {minisign_key_id_hex(keys.minisign_id)})\n")
        return SUCCESS
