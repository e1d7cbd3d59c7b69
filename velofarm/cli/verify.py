"""`velofarm verify`: one command that checks a release folder or a published release.

Exit codes: 0 everything verifies; 1 verification failed (each problem names its file), or with
--rebuild a rebuilt platform differs or failed to build; 2 bad input (no keys, an unreadable --key,
a release that cannot be downloaded, a tag that was moved or is not the release's).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from velofarm.errors import VelofarmError

OK, FAILED, BAD_INPUT = 0, 1, 2


def add_verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("release", nargs="?", help="a release folder, or the URL of a directory release (…/releases/TAG/)")
    p.add_argument("--github", nargs=2, metavar=("OWNER/REPO", "TAG"), help="download a GitHub release and check it")
    p.add_argument("--api-url", default="https://api.github.com", help="GitHub Enterprise: https://HOST/api/v3")
    p.add_argument("--token-file", help="a token for a private repository (never pass it on the command line)")
    p.add_argument("--keys", help="the farm's public keys folder (default: ./keys when it exists)")
    p.add_argument("--key", action="append", default=[], help="a public key file to trust (repeatable): "
                   "minisign.pub, allowed_signers or ssh.pub, provenance.pub")
    p.add_argument("--commit", help="the commit the release must be built from (GitHub releases carry no release.json)")
    p.add_argument("--unsigned", action="store_true", help="check checksums only (a release made without keys)")
    p.add_argument("--rebuild", metavar="TAG", help="also rebuild TAG here (the platforms this host can build) "
                   "and compare each archive with the released one")
    p.add_argument("--repo", help="--rebuild: the project's git URL or path (default: farm.toml's project.git_url)")
    p.add_argument("--spec", default="farm.toml", help="--rebuild: the farm's farm.toml (default: ./farm.toml)")
    p.add_argument("--platform", action="append", default=[], help="--rebuild: only this platform (repeatable)")


def _trusted(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from velofarm.release.keys import load_trusted_keys
    if args.unsigned:
        return None
    keys_dir = Path(args.keys) if args.keys else (Path("keys") if Path("keys").is_dir() else None)
    if keys_dir is None and not args.key:
        raise VelofarmError("no public keys to check the signatures with: pass the farm's keys/ folder with "
                            "--keys DIR or a key with --key FILE (or --unsigned to check checksums only)")
    trusted = load_trusted_keys(keys_dir, [Path(k) for k in args.key])
    if not (trusted.minisign or trusted.ssh or trusted.provenance):
        raise VelofarmError(f"{keys_dir or args.key}: holds no public key velofarm can read")
    return trusted


def run_verify(args: argparse.Namespace) -> int:
    from velofarm.release.trustcheck import check_folder_without_meta
    from velofarm.release.verify import verify_release
    if bool(args.release) == bool(args.github):
        print("error: name a release folder or URL, or --github OWNER/REPO TAG (one of them)")
        return BAD_INPUT
    if args.rebuild and args.github:
        print("error: --rebuild needs the release's release.json (the commit and digests): give the "
              "directory release's folder or URL instead of --github")
        return BAD_INPUT
    try:
        trusted = _trusted(args)
        rebuild_inputs = None
        with tempfile.TemporaryDirectory(prefix="velofarm-verify-") as tmp:
            if args.github:
                folder = _download_github(args, Path(tmp))
                if trusted is None:
                    raise VelofarmError("--github: a GitHub release can only be checked with keys (it has no "
                                        "release.json); drop --unsigned")
                problems = check_folder_without_meta(folder, args.github[1], trusted, args.commit)
            else:
                folder = _local_or_downloaded(args.release, Path(tmp))
                rebuild_inputs = _rebuild_inputs(args, folder) if args.rebuild else None
                problems = verify_release(folder, trusted)
            where = args.release or f"{args.github[0]} {args.github[1]}"
            _report_verification(where, trusted, problems)
            rebuilt_ok = _rebuild(args, folder, Path(tmp), *rebuild_inputs) if rebuild_inputs else True
    except VelofarmError as exc:
        print(f"error: {exc}")
        return BAD_INPUT
    return OK if not problems and rebuilt_ok else FAILED


def _report_verification(where: str, trusted: object, problems: list[str]) -> None:
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        what = "checksums" if trusted is None else "checksums, both signatures of SHA256SUMS, provenance and SBOM"
        print(f"{where}: ok: {what} verify")


def _rebuild_inputs(args: argparse.Namespace, folder: Path) -> tuple[Any, dict[str, Any]]:
    """The farm's spec and the release's release.json, checked before any work starts."""
    from velofarm.release.model import RELEASE_JSON
    from velofarm.spec.farm import load_spec
    try:
        meta = json.loads((folder / RELEASE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VelofarmError(f"{folder / RELEASE_JSON}: cannot be read ({exc}); --rebuild needs it") from None
    if not isinstance(meta, dict) or meta.get("tag") != args.rebuild:
        tag = meta.get("tag") if isinstance(meta, dict) else None
        raise VelofarmError(f"--rebuild {args.rebuild}: this release is of tag {tag}; pass --rebuild {tag}")
    return load_spec(args.spec), meta


def _rebuild(args: argparse.Namespace, folder: Path, tmp: Path, spec: Any, meta: dict[str, Any]) -> bool:
    """Rebuild the release's tag here and print one line per platform; True when none differs or failed."""
    from velofarm.release.rebuild import DIFFERS, FAILED, MATCH, rebuild
    results = rebuild(spec, meta, folder, args.repo or spec.repo_url, tmp / "rebuild", args.platform or None)
    for result in results:
        print(f"{'FAIL ' if result.outcome in (DIFFERS, FAILED) else ''}rebuild {result.line()}")
    matched = sum(r.outcome == MATCH for r in results)
    print(f"rebuild of {args.rebuild}: {matched} of {len(results)} platforms match the release")
    return not any(r.outcome in (DIFFERS, FAILED) for r in results)


def _local_or_downloaded(release: str, tmp: Path) -> Path:
    from velofarm.publish.download import download_directory_release
    if release.startswith(("http://", "https://")):
        return download_directory_release(release, tmp / "release")
    folder = Path(release)
    if not folder.is_dir():
        raise VelofarmError(f"{folder}: no such release folder")
    return folder


def _download_github(args: argparse.Namespace, tmp: Path) -> Path:
    from velofarm.publish.download import download_github_release
    token = Path(args.token_file).read_text(encoding="utf-8").strip() if args.token_file else None
    return download_github_release(args.api_url, args.github[0], args.github[1], tmp / "release", token)
