"""Release tags by semver.org rules: which tags release, which are pre-releases, how they order."""

from __future__ import annotations

import itertools
import random

import pytest

from velofarm.spec.farm import DEFAULT_TAG_PATTERN
from velofarm.tags.semver import is_prerelease, normalize_tag, parse_tag
from velofarm.tags.tagpolicy import decide


@pytest.mark.parametrize("tag", ["v1.0.0-rc.1", "v1.0.0-beta", "v0.0.1-test.9", "v1.0.0-sprint",
                                 "v1.0.0-alpha+build.1", "v2.3.4-0", "v1.0.0-x-y.z"])
def test_prerelease(tag: str) -> None:
    assert is_prerelease(tag)
    v = parse_tag(tag)
    assert v is not None and v.prerelease


@pytest.mark.parametrize("tag", ["v1.0.0", "v1.0.0+build.5", "v0.0.0", "v10.20.30+rc.1"])
def test_not_prerelease(tag: str) -> None:
    # Build metadata (even one reading 'rc') never makes a pre-release.
    v = parse_tag(tag)
    assert v is not None and not v.prerelease
    assert not is_prerelease(tag)


@pytest.mark.parametrize("tag,version", [
    ("v1.0.0", "1.0.0"), ("v1.0.0+build.5", "1.0.0"), ("v1.0.0-rc.1", "1.0.0-rc.1"),
    ("v1.0.0-rc.1+b.7", "1.0.0-rc.1"), ("v10.200.3000", "10.200.3000"), ("v0.0.1-test.9", "0.0.1-test.9"),
])
def test_version_is_what_cargo_toml_says(tag: str, version: str) -> None:
    v = parse_tag(tag)
    assert v is not None and v.version == version


def test_parts() -> None:
    v = parse_tag("v1.22.333-alpha.7+exp.sha.5114f85")
    assert v is not None
    assert (v.major, v.minor, v.patch, v.pre, v.build) == (1, 22, 333, ("alpha", "7"), ("exp", "sha", "5114f85"))


@pytest.mark.parametrize("tag", [
    "nightly", "v1.2", "v01.0.0", "v1.01.0", "v1.0.01", "1.0.0", "v1.0.0-", "v1.0.0-01", "v1.0.0-rc.01",
    "v1.0.0+", "v1.0.0-rc..1", "v1.0.0-rc_1", "V1.0.0", "v1.0.0 ", " v1.0.0", "v1.0.0.0",
    "v-1.0.0", "", "refs/tags/v1.0.0", "v1.0.0junk",
])
def test_not_a_release_tag(tag: str) -> None:
    assert parse_tag(tag) is None
    assert not is_prerelease(tag)


def test_leading_zeros_allowed_in_build_metadata_and_alphanumerics() -> None:
    assert parse_tag("v1.0.0+001") is not None
    assert parse_tag("v1.0.0-0a") is not None  # alphanumeric identifier, not a number


@pytest.mark.parametrize("tag", ["v1\u0660.0.0", "v1.0.1\u0660", "v1.0.0\n", "v1.0.0-rc.1\n"])
def test_non_ascii_digits_and_trailing_newline_are_not_a_version(tag: str) -> None:
    assert parse_tag(tag) is None


# ------------------------------------------------------------------------------------ ordering

ORDERED = ["v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.2", "v1.0.0-alpha.10", "v1.0.0-alpha.beta",
           "v1.0.0-beta", "v1.0.0-beta.2", "v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.1",
           "v1.1.0", "v1.10.0", "v2.0.0-0", "v2.0.0"]


def key(tag: str) -> tuple[object, ...]:
    v = parse_tag(tag)
    assert v is not None, tag
    return v.sort_key()


def test_sort_key_follows_semver_precedence() -> None:
    shuffled = ORDERED[:]
    random.Random(1).shuffle(shuffled)
    assert shuffled != ORDERED
    assert sorted(shuffled, key=key) == ORDERED


@pytest.mark.parametrize("lower,higher", list(itertools.pairwise(ORDERED)))
def test_each_neighbour_pair(lower: str, higher: str) -> None:
    assert key(lower) < key(higher)


def test_numeric_identifiers_compare_numerically_and_before_alphanumerics() -> None:
    assert key("v1.0.0-alpha.2") < key("v1.0.0-alpha.10")
    assert key("v1.0.0-2") < key("v1.0.0-10")
    assert key("v1.0.0-999") < key("v1.0.0-a")


def test_build_metadata_is_ignored_in_precedence() -> None:
    assert key("v1.0.0+build.5") == key("v1.0.0") == key("v1.0.0+zzz")


# ---------------------------------------------------------------------------------- tag policy

def test_normalize_tag() -> None:
    assert normalize_tag("refs/tags/v1.0.0") == normalize_tag("v1.0.0") == "v1.0.0"
    assert normalize_tag("  refs/tags/v1.0.0\n") == "v1.0.0"
    assert normalize_tag("refs/heads/v1.0.0") == "refs/heads/v1.0.0"


@pytest.mark.parametrize("ref", ["refs/tags/v1.0.0", "v1.0.0"])
def test_tag_ref_and_bare_tag_decide_alike(ref: str) -> None:
    d = decide(ref, DEFAULT_TAG_PATTERN)
    assert (d.tag, d.release) == ("v1.0.0", True)
    assert d == decide("refs/tags/v1.0.0", DEFAULT_TAG_PATTERN)


@pytest.mark.parametrize("ref,category", [("refs/heads/v1.0.0", None), ("refs/heads/main", "tag"),
                                          ("v1.0.0", "branch")])
def test_branches_are_refused(ref: str, category: str | None) -> None:
    d = decide(ref, DEFAULT_TAG_PATTERN, category)
    assert not d.release
    assert "is a branch, not a tag; only tags release" in d.reason and ref in d.reason


@pytest.mark.parametrize("ref", ["refs/tags/nightly", "refs/tags/v1.2", "refs/tags/v01.0.0", "1.0.0",
                                 "refs/tags/v1.0.0junk"])
def test_non_matching_tags_are_refused_with_the_pattern(ref: str) -> None:
    d = decide(ref, DEFAULT_TAG_PATTERN, "tag")
    assert not d.release
    assert f"tag '{normalize_tag(ref)}' does not match the release pattern" in d.reason


@pytest.mark.parametrize("ref", [None, ""])
def test_no_ref(ref: str | None) -> None:
    d = decide(ref, DEFAULT_TAG_PATTERN)
    assert not d.release and "names no branch or tag" in d.reason


def test_default_pattern_agrees_with_the_semver_parser() -> None:
    import re
    tags = ["v1.0.0", "v1.0.0-rc.1", "v1.0.0+build.5", "v0.0.1-test.9", "nightly", "v1.2", "v01.0.0",
            "1.0.0", "v1.0.0-", "v1.0.0junk"]
    for tag in tags:
        assert (re.match(DEFAULT_TAG_PATTERN, tag) is not None) == (parse_tag(tag) is not None), tag
