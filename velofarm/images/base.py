"""`velofarm image base`: a Debian base image made here with debootstrap, for engines that cannot pull.

The mirror is the host's own (its apt sources), never a hard-coded address: a machine that can
install Debian packages can make the base. The tag carries a hash of the inputs (suite, mirror,
package selection), so a changed input gives a new image.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from velofarm.errors import ImageError
from velofarm.images.engine import Progress, docker_cli, image_id, run_stage

SUITE = "bookworm"
BASE_REPO = "velofarm-base"
# minbase is apt + dpkg + a shell; the builder image adds what builds need.
VARIANT = "minbase"
INCLUDE = ("ca-certificates",)
APT_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def read_apt_sources(places: tuple[Path, ...] = APT_SOURCES) -> list[AptSource]:
    """Every `deb` entry of the host's apt configuration (deb822 .sources files and sources.list)."""
    found: list[AptSource] = []
    for place in places:
        files = sorted(place.glob("*.sources")) + sorted(place.glob("*.list")) if place.is_dir() else [place]
        for path in files:
            if not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            found += _deb822(text) if path.suffix == ".sources" else _one_line(text)
    return found


def _deb822(text: str) -> list[AptSource]:
    result = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
            for uri in fields.get("uris", "").split():
                result.append(AptSource(uri.rstrip("/"), tuple(fields.get("suites", "").split()),
                                        tuple(fields.get("components", "main").split())))
    return result


def _one_line(text: str) -> list[AptSource]:
    result = []
    for line in text.splitlines():
        line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()  # type: ignore[assignment]
        if len(line) >= 3 and line[0] == "deb":
            result.append(AptSource(line[1].rstrip("/"), (line[2],), tuple(line[3:]) or ("main",)))
    return result


def host_mirror(sources: list[AptSource], suite: str = SUITE) -> str:
    """The mirror the host installs `suite` from; ImageError naming the files when there is none."""
    for source in sources:
        if suite in source.suites:
            return source.uri
    raise ImageError(f"/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list: no 'deb' entry for suite "
                     f"'{suite}'; add one for a Debian mirror this machine can reach, or give --mirror URL")


def sources_list(sources: list[AptSource], suite: str = SUITE) -> str:
    """The image's /etc/apt/sources.list: the host's entries for this release (suite, -updates, -security)."""
    lines = []
    for source in sources:
        suites = [s for s in source.suites if s == suite or s.startswith(f"{suite}-") or s.startswith(f"{suite}/")]
        for s in suites:
            lines.append(f"deb {source.uri} {s} {' '.join(source.components)}")
    return "\n".join(dict.fromkeys(lines)) + "\n"


def base_tag(mirror: str, apt_lines: str, suite: str = SUITE) -> str:
    inputs = "\n".join([suite, VARIANT, ",".join(INCLUDE), mirror, apt_lines])
    return f"{BASE_REPO}:{suite}-{hashlib.sha256(inputs.encode()).hexdigest()[:12]}"


def planned_base(mirror: str | None = None) -> tuple[str, str, str]:
    """(tag, mirror, sources.list) the base would be made from on this host."""
    sources = read_apt_sources()
    mirror = mirror or host_mirror(sources)
    apt_lines = sources_list(sources) if any(s.uri == mirror for s in sources) else f"deb {mirror} {SUITE} main\n"
    return base_tag(mirror, apt_lines), mirror, apt_lines


def make_base(progress: Progress, mirror: str | None = None, rebuild: bool = False) -> str:
    """The base image's tag, made with debootstrap + docker import unless it already exists."""
    tag, mirror, apt_lines = planned_base(mirror)
    if image_id(tag) and not rebuild:
        progress(f"base      {tag} exists; reusing it")
        return tag
    debootstrap = shutil.which("debootstrap")
    if not debootstrap:
        raise ImageError("debootstrap: not on PATH; apt-get install debootstrap (it makes the base image offline "
                         "from any registry)")
    with tempfile.TemporaryDirectory(prefix="velofarm-base-") as scratch:
        root = Path(scratch) / "rootfs"
        run_stage(f"base      [1/3] debootstrap {SUITE} ({VARIANT}) from {mirror}",
                  [debootstrap, f"--variant={VARIANT}", f"--include={','.join(INCLUDE)}", SUITE, str(root), mirror],
                  progress)
        (root / "etc/apt/sources.list").write_text(apt_lines, encoding="utf-8")
        for cache in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = Path(scratch) / "rootfs.tar"
        run_stage("base      [2/3] pack the root file system",
                  ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tar), "."], progress)
        run_stage(f"base      [3/3] docker import as {tag}",
                  [docker_cli(), "import", "--change", 'CMD ["/bin/bash"]', "-", tag], progress, input_file=str(tar))
    return tag
