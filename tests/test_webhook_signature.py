"""Webhook deliveries: HMAC-SHA256 signatures (GitHub's documented vector) and which events are tag pushes."""

from __future__ import annotations

import json

import pytest

from velofarm.tags.webhook import TagPush, parse_event, signature_of, verify_signature

# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
DIGEST = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
REPO = {"clone_url": "https://github.com/velostreamai/velostream.git",
        "html_url": "https://github.com/velostreamai/velostream"}


def test_github_documented_vector() -> None:
    assert signature_of(SECRET, BODY) == DIGEST


@pytest.mark.parametrize("header", [f"sha256={DIGEST}", DIGEST, f" sha256={DIGEST}\n"])
def test_good_signature_accepted_with_or_without_prefix(header: str) -> None:
    assert verify_signature(SECRET, BODY, header)


def flip(hex_text: str, at: int) -> str:
    return hex_text[:at] + ("0" if hex_text[at] != "0" else "1") + hex_text[at + 1:]


@pytest.mark.parametrize("header", [
    None, "", "sha256=", "sha256", f"sha256={flip(DIGEST, 0)}", f"sha256={flip(DIGEST, 63)}",
    f"sha256={DIGEST[:-1]}", f"sha256={DIGEST[:32]}", f"sha256={DIGEST}00", f"sha1={DIGEST}",
    f"sha256={flip(DIGEST, 10).upper()}", f"SHA256={DIGEST}", f"sha256=sha256={DIGEST}",
    f"sha256={signature_of('another secret', BODY)}",
])
def test_bad_signatures_refused(header: str | None) -> None:
    assert not verify_signature(SECRET, BODY, header)


def test_signature_is_over_the_exact_body() -> None:
    assert not verify_signature(SECRET, BODY + b"\n", f"sha256={DIGEST}")
    assert not verify_signature(SECRET, b"hello, World!", f"sha256={DIGEST}")


@pytest.mark.parametrize("header", [f"sha256={DIGEST}", f"sha256={signature_of('', BODY)}",
                                    signature_of("", BODY)])
def test_empty_secret_refuses_everything(header: str) -> None:
    assert not verify_signature("", BODY, header)


# ------------------------------------------------------------------------------------- events

def body(**payload: object) -> bytes:
    return json.dumps({"repository": REPO, "sender": {"login": "octocat"}, **payload}).encode()


def test_push_of_a_tag() -> None:
    push, reason = parse_event("push", body(ref="refs/tags/v1.2.3", before="0" * 40, after="a" * 40,
                                            deleted=False, head_commit={"id": SHA}))
    assert push == TagPush("refs/tags/v1.2.3", SHA, REPO["clone_url"], "octocat")
    assert reason == "tag pushed"


def test_push_of_a_tag_without_head_commit_uses_after() -> None:
    push, _ = parse_event("push", body(ref="refs/tags/v1.2.3", after="b" * 40, head_commit=None))
    assert push is not None and push.revision == "b" * 40


def test_repository_falls_back_to_html_url_and_sender_to_webhook() -> None:
    payload = {"ref": "refs/tags/v1.2.3", "after": "c" * 40, "head_commit": {"id": SHA},
               "repository": {"html_url": REPO["html_url"]}}
    push, _ = parse_event("push", json.dumps(payload).encode())
    assert push is not None and (push.repository, push.who) == (REPO["html_url"], "webhook")


@pytest.mark.parametrize("payload", [
    {"deleted": True, "after": "0" * 40, "head_commit": None},
    {"deleted": True, "after": "d" * 40, "head_commit": None},
    {"deleted": False, "after": "0" * 40, "head_commit": None},
    {"after": "0" * 40},
])
def test_deletion_of_a_tag_starts_nothing(payload: dict[str, object]) -> None:
    push, reason = parse_event("push", body(ref="refs/tags/v1.2.3", before=SHA, **payload))
    assert push is None
    assert reason == "refs/tags/v1.2.3 was deleted"


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/heads/v1.2.3"])
def test_branch_push_starts_nothing(ref: str) -> None:
    push, reason = parse_event("push", body(ref=ref, after="e" * 40, head_commit={"id": SHA}))
    assert push is None and reason == f"push of {ref} is not a tag"


def test_create_of_a_tag() -> None:
    push, reason = parse_event("create", body(ref="v1.2.3", ref_type="tag", master_branch="main"))
    assert push is not None and push.ref == "refs/tags/v1.2.3"
    assert (push.repository, push.who, reason) == (REPO["clone_url"], "octocat", "tag created")


def test_create_of_a_branch_starts_nothing() -> None:
    push, reason = parse_event("create", body(ref="feature", ref_type="branch"))
    assert push is None and reason == "create of a branch is not a tag"


def test_ping_starts_nothing() -> None:
    assert parse_event("ping", body(zen="Keep it logically awesome.", hook_id=1)) == (None, "ping")


def test_other_events_start_nothing() -> None:
    push, reason = parse_event("release", body(action="published"))
    assert push is None and reason == "event 'release' is not a tag push"


@pytest.mark.parametrize("raw,reason", [(b"{not json", "body is not JSON"), (b"", "body is not JSON"),
                                        (b"\xff\xfe", "body is not JSON"), (b"[1, 2]", "body is not a JSON object"),
                                        (b'"refs/tags/v1.0.0"', "body is not a JSON object")])
def test_invalid_json_starts_nothing(raw: bytes, reason: str) -> None:
    assert parse_event("push", raw) == (None, reason)


def test_create_event_without_a_ref_starts_nothing() -> None:
    from velofarm.tags.webhook import parse_event
    push, reason = parse_event("create", b'{"ref_type": "tag"}')
    assert push is None and "names no tag" in reason
