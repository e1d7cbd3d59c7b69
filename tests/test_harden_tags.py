"""Finding 6: Unicode digits never pass a tag pattern (the shipped one, the default, or one from farm.toml)."""

from __future__ import annotations

import pytest
from conftest import FARM_TOML

from velofarm.spec.farm import DEFAULT_TAG_PATTERN, load_spec
from velofarm.tags.tagpolicy import decide

UNICODE_DIGIT_TAGS = ["v1.0.1\u0663", "v\u0661.0.0", "v1.\u0966.0", "v1.0.0-rc.\u0663", "v1.0.0+build.\uff15"]


@pytest.mark.parametrize("tag", UNICODE_DIGIT_TAGS)
def test_shipped_pattern_refuses_unicode_digits(tag: str) -> None:
    pattern = load_spec(FARM_TOML).release.tag_pattern
    assert not decide(tag, pattern).release
    assert not decide(tag, DEFAULT_TAG_PATTERN).release


def test_shipped_pattern_is_written_in_ascii_classes() -> None:
    pattern = load_spec(FARM_TOML).release.tag_pattern
    assert "\\d" not in pattern and "\\w" not in pattern, pattern


@pytest.mark.parametrize("tag", UNICODE_DIGIT_TAGS)
def test_a_farm_toml_pattern_with_backslash_d_is_matched_as_ascii(tag: str) -> None:
    # An operator's own pattern may use \d; it must still mean [0-9].
    pattern = r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[\w.-]+)?(\+[\w.-]+)?$"
    assert decide("v1.0.1", pattern).release
    assert not decide(tag, pattern).release
