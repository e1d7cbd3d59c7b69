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


def _human(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def _unix_steps(p: NotesPlatform, folder: str, run: str) -> list[str]:
    return [
        "```sh",
        f"curl -LO <release-url>/{p.archive}",
        f"curl -LO <release-url>/{p.archive}.sha256",
        f"sha256sum -c {p.archive}.sha256   # macOS: shasum -a 256 -c {p.archive}.sha256",
        f"tar xzf {p.archive}" if p.archive.endswith(".tar.gz") else f"unzip {p.archive}",
        f"./{folder}/{run} --version",
        "```",
    ]


def _windows_steps(p: NotesPlatform, folder: str, run: str) -> list[str]:
    return [
        "```powershell",
        f"Invoke-WebRequest -OutFile {p.archive} <release-url>/{p.archive}",
        f"(Get-FileHash -Algorithm SHA256 {p.archive}).Hash.ToLower()   # must equal {p.sha256}",
        f"Expand-Archive {p.archive} -DestinationPath .",
        f".\\{folder}\\{run}{p.exe_suffix} --version",
        "```",
    ]


def render_notes(title: str, project: str, tag: str, commit: str, prerelease: bool,
                 platforms: list[NotesPlatform], binaries: list[str], ship: list[str],
                 run_binary: str) -> str:
    """Markdown notes for exactly the platforms built: install steps, checksums, layout, binaries."""
    lines = [f"# {title} {tag}", ""]
    if prerelease:
        lines += [f"**Pre-release**: `{tag}` carries a pre-release version; it is not marked latest.", ""]
    lines += [f"Built from commit `{commit}` for {len(platforms)} platform(s).", "",
              "Verify everything at once: `sha256sum -c SHA256SUMS` "
              "(macOS: `shasum -a 256 -c SHA256SUMS`).", "", "## Install", ""]
    for p in platforms:
        folder = p.archive.removesuffix(".tar.gz").removesuffix(".zip")
        # A Windows binary is installed the Windows way even when a Linux worker built it.
        steps = _windows_steps if p.exe_suffix == ".exe" else _unix_steps
        lines += [f"### {p.name} (`{p.target}`)", ""] + steps(p, folder, run_binary) + [""]
    lines += ["## Checksums (SHA-256)", "", "| archive | size | sha256 |", "|---|---|---|"]
    lines += [f"| `{p.archive}` | {_human(p.size)} | `{p.sha256}` |" for p in platforms]
    lines += ["", "## Archive layout", "", "```", f"{project}-{tag}-<target>/"]
    lines += [f"├── {b}" for b in binaries] + [f"├── {s}" for s in ship] + ["```", ""]
    lines += ["## Binaries", ""] + [f"- `{b}`" for b in binaries] + [""]
    return "\n".join(lines)
