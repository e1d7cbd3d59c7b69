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

from velofarm.buildmaster.platformwait import Overdue, PlatformWatch
from velofarm.errors import VelofarmError
from velofarm.spec.release_fields import DEFAULT_PLATFORM_TIMEOUT_MINUTES


class ReleaseTrigger(Trigger):
    """Triggers every platform build; when any fails, names the platform and links its build.

    On success it sets `platform_builds` ({platform: [build id, ...]}): the only builds whose
    archives the release may publish (assemble reads them by id, so a dry run or rebuild of the
    same tag landing meanwhile cannot replace what gets published).

    A platform none of whose workers is connected for `platform_timeout_minutes` is cancelled and
    fails the release, naming the platform and its workers (platformwait.PlatformWatch).
    """

    def __init__(self, platform_of_builder: dict[str, str] | None = None,
                 platform_timeout_minutes: float = DEFAULT_PLATFORM_TIMEOUT_MINUTES, **kwargs: Any) -> None:
        self.platform_of_builder = dict(platform_of_builder or {})
        self.platform_timeout_minutes = platform_timeout_minutes
        super().__init__(**kwargs)

    @defer.inlineCallbacks
    def run(self) -> Any:
        watch = PlatformWatch(self, self.platform_timeout_minutes, self.platform_of_builder)
        watch.start()
        try:
            results = yield super().run()
        finally:
            watch.stop()
        # The next step (records.RecordBuilds) reads these builds from the database for the provenance.
        self.setProperty("platform_buildrequests", list(self.brids), "ReleaseTrigger")
        if watch.overdue:
            return (yield self._overdue(sorted(watch.overdue.values(), key=lambda o: o.platform)))
        if results == SUCCESS:
            builds = yield self._platform_builds()
            self.setProperty("platform_builds", builds, "ReleaseTrigger")
            return results
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
            names = ", ".join(sorted({self.platform_of_builder.get(f.split(" #")[0], f.split(" #")[0])
                                      for f in failed}))
            self.descriptionDone = [f"platform failed: {names}"]
            self.failed_summary = f"platform failed: {names}; nothing published"
        return results

    @defer.inlineCallbacks
    def _overdue(self, overdue: list[Overdue]) -> Any:
        yield self.addCompleteLog("platforms without a worker", "".join(f"error: {o.describe()}\n" for o in overdue))
        names = ", ".join(o.platform for o in overdue)
        workers = ", ".join(w for o in overdue for w in o.workers)
        self.descriptionDone = [f"no worker for {names}"]
        self.failed_summary = (f"no worker connected for {overdue[0].minutes:g} min: {names} "
                               f"(waited for {workers}); nothing published")
        return FAILURE

    @defer.inlineCallbacks
    def _platform_builds(self) -> Any:
        """{platform: [build id, ...]} of the builds this step's requests ran, in trigger order."""
        names: dict[int, str] = {}
        found: dict[str, list[int]] = {}
        for brid in self.brids:
            builds = yield self.master.db.builds.getBuilds(buildrequestid=brid)
            if not builds:
                continue
            build = builds[-1]  # a retried request has several builds; the last one succeeded
            if build.builderid not in names:
                builder = yield self.master.data.get(("builders", build.builderid))
                names[build.builderid] = builder["name"]
            platform = self.platform_of_builder.get(names[build.builderid])
            if platform:
                found.setdefault(platform, []).append(int(build.id))
        return found

    def getResultSummary(self) -> dict[str, str]:
        summary = getattr(self, "failed_summary", None)
        return {"step": summary} if summary else super().getResultSummary()


class CompareBuilds(BuildStep):
    """With [release] reproduce = 2: fails the release unless each platform's builds are byte-identical.

    The comparison runs in a thread of the master (release/assemble.compare_stored); a mismatch
    names the platform and both builds, logs the first differing file, and attaches diffoscope's
    HTML report when diffoscope is installed.
    """

    def __init__(self, spec_path: str, artifacts_root: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_path, self.artifacts_root = spec_path, artifacts_root

    @defer.inlineCallbacks
    def run(self) -> Any:
        from velofarm.release.assemble import compare_stored
        from velofarm.release.reproduce import diffoscope_html
        from velofarm.spec.farm import load_spec

        log = yield self.addLog("stdio")
        builds = self.getProperty("platform_builds") or {}
        tag, commit = str(self.getProperty("tag")), str(self.getProperty("tag_commit"))
        try:
            spec = yield threads.deferToThread(load_spec, self.spec_path)
            mismatches = yield threads.deferToThread(compare_stored, spec, tag, commit, Path(self.artifacts_root),
                                                     builds)
        except VelofarmError as exc:
            yield log.addStderr(f"error: {exc}\n")
            return FAILURE
        for platform, ids in sorted(builds.items()):
            yield log.addStdout(f"{platform}: builds {', '.join(map(str, ids))}\n")
        if not mismatches:
            self.descriptionDone = ["builds agree"]
            return SUCCESS
        for m in mismatches:
            yield log.addStderr(m.comparison.report + f"report: {m.report_file}\n")
            html = yield threads.deferToThread(diffoscope_html, m.first.path, m.second.path)
            if html:
                yield self.addHTMLLog(f"diffoscope {m.comparison.platform}", html)
        names = ", ".join(m.comparison.platform for m in mismatches)
        self.descriptionDone = [f"not reproducible: {names}"]
        return FAILURE


class PublishRelease(BuildStep):
    """Publishes the assembled release from the master, with the token from Buildbot's secrets.

    It runs in a thread of the master rather than as a command, so the token is never put in a
    process environment (Buildbot prints a command's environment into its log).
    """

    renderables = ["directory", "token"]

    def __init__(self, spec_path: str, directory: Any, token: Any = None, artifacts_root: str = "",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_path = spec_path
        self.artifacts_root = artifacts_root  # its tag is marked published there: prune keeps it
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
        if self.artifacts_root:
            from velofarm.artifacts.retention import mark_published
            yield threads.deferToThread(mark_published, Path(self.artifacts_root), str(self.getProperty("tag")),
                                        outcome.location)
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
