"""Release notes rendered from the spec and the artifacts actually built: one source of truth."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NotesPlatform:
    name: str
    target: str
    os: str
    archive: str  # asset name
    sha256: str
    size: int
    exe_suffix: str
    url: str = ""  # where the archive is downloaded from (absolute, or relative to the notes)


@dataclass(frozen=True)
class NotesIntro:
    """What opens the notes: the tag's message and the changelog (see changelog.render_changes)."""

    annotation: str = ""
    heading: str = ""
    changelog: str = ""


def _human(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def _remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _unix_steps(p: NotesPlatform, folder: str, run: str) -> list[str]:
    fetch = ([f"curl -LO {p.url}", f"curl -LO {p.url}.sha256"] if _remote(p.url)
             else [f"# {p.archive} and {p.archive}.sha256 are in the folder that holds these notes"])
    return [
        "```sh", *fetch,
        f"sha256sum -c {p.archive}.sha256   # macOS: shasum -a 256 -c {p.archive}.sha256",
        f"tar xzf {p.archive}" if p.archive.endswith(".tar.gz") else f"unzip {p.archive}",
        f"./{folder}/{run} --version",
        "```",
    ]


def _windows_steps(p: NotesPlatform, folder: str, run: str) -> list[str]:
    fetch = ([f"Invoke-WebRequest -OutFile {p.archive} {p.url}"] if _remote(p.url)
             else [f"# {p.archive} is in the folder that holds these notes"])
    return [
        "```powershell", *fetch,
        f"(Get-FileHash -Algorithm SHA256 {p.archive}).Hash.ToLower()   # must equal {p.sha256}",
        f"Expand-Archive {p.archive} -DestinationPath .",
        f".\\{folder}\\{run}{p.exe_suffix} --version",
        "```",
    ]


def render_head(title: str, tag: str, commit: str, prerelease: bool, platform_count: int,
                intro: NotesIntro) -> list[str]:
    """The notes' opening: title, the tag's message, pre-release warning, the changelog."""
    lines = [f"# {title} {tag}", ""]
    if intro.annotation:
        lines += [intro.annotation, ""]
    if prerelease:
        lines += [f"**Pre-release**: `{tag}` carries a pre-release version; it is not marked latest.", ""]
    lines += [f"Built from commit `{commit}` for {platform_count} platform(s).", ""]
    if intro.heading:
        lines += [f"## {intro.heading}", "", intro.changelog.strip("\n"), ""]
    return lines


def render_notes(title: str, project: str, tag: str, commit: str, prerelease: bool,
                 platforms: list[NotesPlatform], binaries: list[str], ship: list[str],
                 run_binary: str, sums_url: str = "SHA256SUMS", intro: NotesIntro = NotesIntro()) -> str:
    """Markdown notes for exactly the platforms built: changes, install steps, checksums, layout."""
    lines = render_head(title, tag, commit, prerelease, len(platforms), intro)
    lines += ["## Install", "",
              f"Verify everything at once: download [SHA256SUMS]({sums_url}), then `sha256sum -c SHA256SUMS` "
              "(macOS: `shasum -a 256 -c SHA256SUMS`).", ""]
    for p in platforms:
        folder = p.archive.removesuffix(".tar.gz").removesuffix(".zip")
        # A Windows binary is installed the Windows way even when a Linux worker built it.
        steps = _windows_steps if p.exe_suffix == ".exe" else _unix_steps
        lines += [f"### {p.name} (`{p.target}`)", ""] + steps(p, folder, run_binary) + [""]
    lines += ["## Checksums (SHA-256)", "", "| archive | size | sha256 |", "|---|---|---|"]
    lines += [f"| [`{p.archive}`]({p.url or p.archive}) | {_human(p.size)} | `{p.sha256}` |" for p in platforms]
    lines += ["", "## Archive layout", "", "```", f"{project}-{tag}-<target>/"]
    lines += [f"├── {b}" for b in binaries] + [f"├── {s}" for s in ship] + ["```", ""]
    lines += ["## Binaries", ""] + [f"- `{b}`" for b in binaries] + [""]
    return "\n".join(lines)
