"""Release notes rendered from the spec and the artifacts actually built: one source of truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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


@dataclass(frozen=True)
class VerifyInfo:
    """The public keys and the signed files a release's notes tell users to check."""

    minisign_key: str  # the base64 line (RW...)
    allowed_signer: str  # the current allowed_signers line
    provenance_pem: str
    provenance_file: str
    sbom_file: str

    @classmethod
    def from_keys_dir(cls, keys_dir: Path, trust_meta: dict[str, object]) -> "VerifyInfo":
        from velofarm.release.keys import ALLOWED_SIGNERS, MINISIGN_PUB, PROVENANCE_PUB
        minisign = (keys_dir / MINISIGN_PUB).read_text(encoding="utf-8").splitlines()[1].strip()
        signer = next(line for line in (keys_dir / ALLOWED_SIGNERS).read_text(encoding="utf-8").splitlines()
                      if line.strip() and not line.startswith("#"))
        return cls(minisign, signer, (keys_dir / PROVENANCE_PUB).read_text(encoding="utf-8").strip(),
                   str(trust_meta["provenance"]), str(trust_meta["sbom"]))


def _verify_section(v: VerifyInfo, example_archive: str, sums_url: str) -> list[str]:
    from velofarm.release.keys import NAMESPACE, PRINCIPAL
    if sums_url.startswith(("http://", "https://")):
        fetch_minisig = [f"curl -LO {sums_url} -LO {sums_url}.minisig"]
        fetch_sshsig = [f"curl -LO {sums_url} -LO {sums_url}.sig"]
    else:
        fetch_minisig = fetch_sshsig = ["# SHA256SUMS and its signatures are in the folder that holds these notes"]
    ssh_verify = f"ssh-keygen -Y verify -f allowed_signers -I {PRINCIPAL} -n {NAMESPACE} -s SHA256SUMS.sig"
    return [
        "## Verify", "",
        "`SHA256SUMS` is signed by the farm's keys (also in the repository's `keys/` folder); "
        f"`{v.provenance_file}` says how each archive was built (SLSA provenance) and `{v.sbom_file}` "
        "lists every crate (CycloneDX). Check the signature first, then the archives against `SHA256SUMS`.", "",
        "Linux and macOS, with minisign (`apt install minisign`, `brew install minisign`):", "",
        "```sh", *fetch_minisig,
        f"minisign -Vm SHA256SUMS -P {v.minisign_key}",
        "sha256sum --ignore-missing -c SHA256SUMS   # macOS: shasum -a 256 --ignore-missing -c SHA256SUMS",
        "```", "",
        "With nothing but OpenSSH 8.1+ (built into macOS and most Linux distributions):", "",
        "```sh", *fetch_sshsig,
        f"echo '{v.allowed_signer}' > allowed_signers", f"{ssh_verify} < SHA256SUMS", "```", "",
        "Windows (PowerShell, with OpenSSH 9.5+ or Git for Windows; the inbox OpenSSH 7.7 has no `-Y`). "
        "PowerShell re-encodes what it pipes or redirects, which breaks the signature: let `cmd` redirect, "
        "and write `allowed_signers` without a BOM:", "",
        "```powershell",
        f'[IO.File]::WriteAllText("$PWD\\allowed_signers", \'{v.allowed_signer}\' + "`n")',
        f'cmd /c "{ssh_verify} < SHA256SUMS"',
        f"(Get-FileHash -Algorithm SHA256 {example_archive}).Hash.ToLower()   # must equal its line in SHA256SUMS",
        "```", "",
        "Everything at once (checksums, both signatures, provenance, SBOM): "
        "`velofarm verify --keys keys/ <release folder>`. Provenance with cosign: "
        f"`cosign verify-blob-attestation --key provenance.pub --signature {v.provenance_file} "
        f"--type slsaprovenance1 --insecure-ignore-tlog=true {example_archive}`.", "",
        "Public keys:", "", "```", f"minisign  {v.minisign_key}", f"ssh       {v.allowed_signer}", "```", "",
        "```", v.provenance_pem, "```", "",
    ]


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
                 run_binary: str, sums_url: str = "SHA256SUMS", intro: NotesIntro = NotesIntro(),
                 verify: VerifyInfo | None = None) -> str:
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
    if verify is not None and platforms:
        lines += _verify_section(verify, platforms[0].archive, sums_url)
    lines += ["## Checksums (SHA-256)", "", "| archive | size | sha256 |", "|---|---|---|"]
    lines += [f"| [`{p.archive}`]({p.url or p.archive}) | {_human(p.size)} | `{p.sha256}` |" for p in platforms]
    lines += ["", "## Archive layout", "", "```", f"{project}-{tag}-<target>/"]
    lines += [f"├── {b}" for b in binaries] + [f"├── {s}" for s in ship] + ["```", ""]
    lines += ["## Binaries", ""] + [f"- `{b}`" for b in binaries] + [""]
    return "\n".join(lines)
