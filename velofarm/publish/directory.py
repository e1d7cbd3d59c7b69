"""The embedded default publisher: `releases/<tag>/`, written complete or not at all."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from velofarm.errors import PublishError, disk_fix, disk_problem
from velofarm.release.model import NOTES_FILE, RELEASE_JSON, Release
from velofarm.release.verify import load_release


@dataclass
class DirectoryOutcome:
    state: str  # "published" or "already-published"
    location: str
    actions: list[str] = field(default_factory=list)


class DirectoryPublisher:
    """Copies a verified release into `<root>/<tag>/` via a temporary folder and one rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def publish(self, release: Release) -> DirectoryOutcome:
        """Publish once; a re-run of the same release changes nothing; a different one is refused."""
        final = self.root / release.tag
        if final.exists():
            return self._compare_existing(release, final)
        tmp = self.root / f".{release.tag}.tmp-{os.getpid()}"
        names = [a.name for a in release.assets] + [NOTES_FILE, RELEASE_JSON]
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for name in names:
                shutil.copy2(release.directory / name, tmp / name)
            load_release(tmp)  # what landed verifies before it becomes visible
            os.replace(tmp, final)
        except OSError as exc:  # a full or read-only disk: the partial copy goes (finally), nothing is visible
            raise PublishError(f"{final}: release {release.tag} was not published: {disk_problem(exc)}; "
                               f"{disk_fix(exc, self.root)} ([release] directory) and publish again (re-run "
                               "the release, or velofarm publish)") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return DirectoryOutcome("published", str(final), [f"wrote {len(names)} files"])

    def _compare_existing(self, release: Release, final: Path) -> DirectoryOutcome:
        existing = load_release(final)
        ours = {(a.name, a.size, a.sha256) for a in release.assets}
        theirs = {(a.name, a.size, a.sha256) for a in existing.assets}
        if ours != theirs:
            differ = sorted({n for n, _, _ in ours ^ theirs})
            raise PublishError(f"{final}: release {release.tag} is already published with different assets "
                               f"({', '.join(differ)}); a published release is never overwritten: "
                               "delete the folder by hand if you really mean to replace it")
        return DirectoryOutcome("already-published", str(final), ["nothing changed: identical release exists"])
