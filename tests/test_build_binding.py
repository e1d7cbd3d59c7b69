"""Artifacts bound to their build, and the reproducibility check: over the real store and assembler."""

from __future__ import annotations

import json
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
from conftest import need
from test_release_assembly import BUILDS, COMMIT, TAG, archive_bytes, fill_store, make_spec, store_build

from velofarm.errors import ReleaseError, SpecError
from velofarm.release.assemble import assemble_release, compare_stored
from velofarm.release.model import RELEASE_JSON
from velofarm.release.reproduce import diffoscope_html, first_difference
from velofarm.spec.farm import Spec, parse_spec

OTHER_COMMIT = "0" * 39 + "1"


def spec_with(tmp_path: Path, release: dict[str, object] | None = None,
              platforms: dict[str, dict[str, object]] | None = None) -> Spec:
    data = {
        "project": {"name": "demo", "title": "Demo", "git_url": "https://example.invalid/demo.git",
                    "ship": ["README.md"], "binaries": {"demo": ["--version"]}},
        "platforms": platforms or {"linux-x86_64": {}, "windows-x86_64-gnu": {}},
        "workers": {"lin-1": {"platforms": list(platforms or ["linux-x86_64", "windows-x86_64-gnu"])}},
        "release": release or {},
    }
    return parse_spec(data, tmp_path / "farm.toml", registry={})


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1700000000
            tf.addfile(info, BytesIO(data))
    return buf.getvalue()


def assemble(spec: Spec, tmp_path: Path, builds: dict[str, list[int]] = BUILDS) -> Path:
    return assemble_release(spec, TAG, COMMIT, tmp_path / "artifacts", tmp_path / "staging" / TAG, builds)


# ------------------------------------------------------------------------------------ binding

def test_a_dry_run_landing_after_the_release_build_changes_nothing_published(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    store = fill_store(spec, tmp_path / "artifacts")
    released = store["linux-x86_64"].read_bytes()
    # A dry run of the same tag stores build 31 after the release's build 11, before assembly.
    later = store_build(tmp_path / "artifacts", spec, TAG, "linux-x86_64", 31, b"a dry run's different bytes")
    assert (later.parent.parent.parent / later.name).read_bytes() == b"a dry run's different bytes"  # newest shown
    out = assemble(spec, tmp_path)
    assert (out / store["linux-x86_64"].name).read_bytes() == released
    meta = json.loads((out / RELEASE_JSON).read_text())
    linux = next(p for p in meta["platforms"] if p["name"] == "linux-x86_64")
    assert linux["builds"] == [{"build_id": 11, "build_number": 11, "builder": "build-linux-x86_64",
                                "worker": "lin-1", "commit": COMMIT}]


def test_an_archive_of_another_commit_is_refused_naming_both(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    root = tmp_path / "artifacts"
    store_build(root, spec, TAG, "linux-x86_64", 11, archive_bytes(spec, "linux-x86_64"), commit=OTHER_COMMIT)
    store_build(root, spec, TAG, "windows-x86_64-gnu", 12, archive_bytes(spec, "windows-x86_64-gnu"))
    with pytest.raises(ReleaseError) as info:
        assemble(spec, tmp_path)
    msg = str(info.value)
    assert "platform linux-x86_64" in msg and f"from commit {OTHER_COMMIT}" in msg
    assert f"this release triggered build 11 of {TAG} at commit {COMMIT}" in msg
    assert "build-linux-x86_64 #11 (build 11, worker lin-1)" in msg
    assert not (tmp_path / "staging").exists() or not list((tmp_path / "staging").iterdir())


def test_a_build_this_release_did_not_trigger_is_never_read(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    fill_store(spec, tmp_path / "artifacts")
    with pytest.raises(ReleaseError, match="build 99, which this release triggered, stored nothing"):
        assemble(spec, tmp_path, {**BUILDS, "linux-x86_64": [99]})
    with pytest.raises(ReleaseError, match="platform windows-x86_64-gnu: this release triggered no build of it"):
        assemble(spec, tmp_path, {"linux-x86_64": [11]})


def test_a_build_record_naming_another_build_is_refused(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    store = fill_store(spec, tmp_path / "artifacts")
    record = store["linux-x86_64"].parent / "build.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "build_id": 5}))
    with pytest.raises(ReleaseError, match=r"build\.json says build-linux-x86_64 #11 \(build 5"):
        assemble(spec, tmp_path)
    record.unlink()
    with pytest.raises(ReleaseError, match=r"build\.json: missing; the archive beside it is not bound to a build"):
        assemble(spec, tmp_path)


# ------------------------------------------------------------------------------ reproduce = 2

def two_builds(tmp_path: Path, linux: tuple[bytes, bytes] | None = None) -> tuple[Spec, dict[str, list[int]]]:
    """Two stored builds of each platform (identical unless `linux` gives the two linux archives)."""
    spec = spec_with(tmp_path, {"reproduce": 2})
    root = tmp_path / "artifacts"
    for name, (a, b) in {"linux-x86_64": (11, 21), "windows-x86_64-gnu": (12, 22)}.items():
        first, second = linux if linux and name == "linux-x86_64" else (archive_bytes(spec, name),) * 2
        store_build(root, spec, TAG, name, a, first)
        store_build(root, spec, TAG, name, b, second)
    return spec, {"linux-x86_64": [11, 21], "windows-x86_64-gnu": [12, 22]}


def test_two_identical_builds_are_recorded_as_agreeing(tmp_path: Path) -> None:
    spec, builds = two_builds(tmp_path)
    assert compare_stored(spec, TAG, COMMIT, tmp_path / "artifacts", builds) == []
    meta = json.loads((assemble(spec, tmp_path, builds) / RELEASE_JSON).read_text())
    assert meta["reproduced"]["builds_per_platform"] == 2
    assert meta["reproduced"]["platforms"]["linux-x86_64"]["agreed"] == [11, 21]
    assert meta["reproduced"]["platforms"]["windows-x86_64-gnu"]["agreed"] == [12, 22]
    linux = next(p for p in meta["platforms"] if p["name"] == "linux-x86_64")
    assert [b["build_id"] for b in linux["builds"]] == [11, 21]


def test_builds_that_differ_fail_naming_the_platform_both_builds_and_the_file(tmp_path: Path) -> None:
    top = "demo-v1.2.3-x86_64-unknown-linux-gnu"
    spec, builds = two_builds(tmp_path, linux=(tar_gz({f"{top}/README.md": b"same", f"{top}/demo": b"built at 12:00:00"}),
                                               tar_gz({f"{top}/README.md": b"same", f"{top}/demo": b"built at 12:00:01"})))
    mismatches = compare_stored(spec, TAG, COMMIT, tmp_path / "artifacts", builds)
    assert [m.comparison.platform for m in mismatches] == ["linux-x86_64"]
    report = mismatches[0].comparison.report
    assert "platform linux-x86_64 is not reproducible" in report
    assert "build-linux-x86_64 #11 (build 11" in report and "build-linux-x86_64 #21 (build 21" in report
    assert f"first difference: {top}/demo: content differs (first at byte 16 of 17 / 17" in report
    assert mismatches[0].report_file.read_text() == report
    with pytest.raises(ReleaseError, match="platform linux-x86_64 is not reproducible") as info:
        assemble(spec, tmp_path, builds)
    assert f"{top}/demo: content differs" in str(info.value)
    assert not (tmp_path / "staging").exists() or not list((tmp_path / "staging").iterdir())


def test_one_build_when_two_are_required_is_refused(tmp_path: Path) -> None:
    spec, builds = two_builds(tmp_path)
    with pytest.raises(ReleaseError, match=r"1 build\(s\) triggered, but \[release\] reproduce = 2"):
        assemble(spec, tmp_path, {**builds, "linux-x86_64": [11]})


def test_first_difference_names_the_first_differing_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    a.write_bytes(tar_gz({"x/README": b"same", "x/bin": b"\x7fELF stamp 1", "x/z": b"1"}))
    b.write_bytes(tar_gz({"x/README": b"same", "x/bin": b"\x7fELF stamp 2", "x/z": b"2"}))
    assert first_difference(a, b).startswith("x/bin: content differs (first at byte 11 of 12 / 12")
    b.write_bytes(tar_gz({"x/README": b"same", "x/bin": b"\x7fELF stamp 1", "x/z": b"1"}))
    assert first_difference(a, b) == "every entry is the same; the archive container differs (compression or headers)"


# ------------------------------------------------------------------------------------- spec

@pytest.mark.parametrize("value", [0, 3, "2", True])
def test_reproduce_must_be_one_or_two(tmp_path: Path, value: object) -> None:
    with pytest.raises(SpecError, match=r"release\.reproduce: must be 1 .* or 2"):
        spec_with(tmp_path, {"reproduce": value})


def test_authenticode_only_on_windows_and_only_true_or_false(tmp_path: Path) -> None:
    assert spec_with(tmp_path, platforms={"windows-x86_64-gnu": {"authenticode": True}}) \
        .platforms["windows-x86_64-gnu"].authenticode
    with pytest.raises(SpecError, match=r"linux-x86_64\.authenticode: only Windows platforms"):
        spec_with(tmp_path, platforms={"linux-x86_64": {"authenticode": True}})
    with pytest.raises(SpecError, match=r"authenticode: must be true or false, got 'yes'"):
        spec_with(tmp_path, platforms={"windows-x86_64-gnu": {"authenticode": "yes"}})


def test_diffoscope_reports_the_difference_as_html(tmp_path: Path) -> None:
    need("diffoscope", "diffoscope-minimal")
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    a.write_bytes(tar_gz({"x/README": b"same", "x/stamp.txt": b"built at 12:00:00\n"}))
    b.write_bytes(tar_gz({"x/README": b"same", "x/stamp.txt": b"built at 12:00:01\n"}))
    html = diffoscope_html(a, b)
    assert html is not None and html.lstrip().startswith("<!DOCTYPE html>")
    assert "x/stamp.txt" in html and "12:00:0<ins>1</ins>" in html  # the changed line, marked up


def test_the_second_build_has_its_own_cargo_target_folder() -> None:
    from buildbot.process.properties import Properties

    from velofarm.buildmaster.factories import bin_dir, cargo_target_dir
    platform = spec_with(Path("/nowhere")).platforms["linux-x86_64"]
    props = Properties(builddir="/w/build-linux-x86_64")
    rendered: list[str] = []
    for again in (False, True):
        for value in (cargo_target_dir(platform, again), bin_dir(platform, again)):
            props.render(value).addCallback(rendered.append)
    assert rendered == ["/w/build-linux-x86_64/../.cargo-target/linux-x86_64",
                        "/w/build-linux-x86_64/../.cargo-target/linux-x86_64/x86_64-unknown-linux-gnu/release",
                        "/w/build-linux-x86_64/../.cargo-target/linux-x86_64-again",
                        "/w/build-linux-x86_64/../.cargo-target/linux-x86_64-again/x86_64-unknown-linux-gnu/release"]
