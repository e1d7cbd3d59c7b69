"""Web UI users: password hashing, farm.toml validation and editing, and `velofarm user`."""

from __future__ import annotations

import stat
from pathlib import Path

import bcrypt
import pytest

from velofarm.cli.main import main
from velofarm.errors import SpecError
from velofarm.secretstore import SecretStore
from velofarm.spec.farm import load_spec
from velofarm.users import (
    UserError,
    add_user_table,
    check_password_policy,
    hash_password,
    remove_user_table,
    roles_for,
    verify_password,
)

FARM = """\
# velofarm: what ops edit.
[project]
name = "demo"
git_url = "remote.git"

[project.binaries]
demo = ["--version"]

[platforms.linux-x86_64]

# the build box under the desk
[workers.box]
platforms = ["linux-x86_64"]

[master]
secrets_dir = "secrets"
"""


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "farm.toml"
    path.write_text(FARM, encoding="utf-8")
    return path


def secret_file(spec_path: Path, name: str) -> Path:
    return spec_path.parent / "secrets" / f"user-{name}"


# --- hashing -------------------------------------------------------------------------------------

def test_a_hash_verifies_its_password_and_nothing_else() -> None:
    encoded = hash_password("correct horse battery")
    assert encoded.startswith("scrypt$n=32768,r=8,p=1$")
    assert "correct horse" not in encoded
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse batterY", encoded)
    assert not verify_password("", encoded)


def test_the_same_password_hashes_differently_each_time() -> None:
    assert hash_password("same password 1") != hash_password("same password 1")


@pytest.mark.parametrize("stored", [None, "", "plaintext-password", "scrypt$n=32768,r=8,p=1$!!$!!",
                                    "scrypt$n=1073741824,r=8,p=1$c2FsdA==$aGFzaA==",  # would stall the master
                                    "scrypt$n=1000,r=8,p=1$c2FsdA==$aGFzaA==",  # not a power of two
                                    "$2b$04$notabcrypthash"])
def test_missing_or_malformed_hashes_never_match(stored: str | None) -> None:
    assert not verify_password("plaintext-password", stored)


def test_bcrypt_hashes_from_htpasswd_are_accepted() -> None:
    encoded = bcrypt.hashpw(b"from htpasswd -B", bcrypt.gensalt(rounds=4)).decode()
    assert verify_password("from htpasswd -B", encoded)
    assert not verify_password("from htpasswd -b", encoded)
    assert not verify_password("x" * 100, encoded)  # past bcrypt's 72 bytes: refused, not truncated


def test_short_passwords_are_refused() -> None:
    with pytest.raises(UserError, match="at least 10"):
        check_password_policy("short")
    check_password_policy("long enough password")


def test_release_managers_also_hold_ops() -> None:
    assert roles_for("ops") == ("ops",)
    assert set(roles_for("release-manager")) == {"ops", "release-manager"}
    assert roles_for("admin") == ()


# --- farm.toml -----------------------------------------------------------------------------------

def test_adding_and_removing_tables_keeps_comments_and_other_tables() -> None:
    text = add_user_table(FARM, "olga", "ops")
    text = add_user_table(text, "j.doe", "release-manager")
    assert '[users.olga]\nrole = "ops"\n' in text
    assert '[users."j.doe"]\nrole = "release-manager"\n' in text  # a bare key would split at the dot
    assert remove_user_table(remove_user_table(text, "j.doe"), "olga") == FARM


def test_removing_a_table_in_the_middle_keeps_the_next_tables_comment() -> None:
    text = FARM.replace("# the build box", '[users.olga]\nrole = "ops"\n\n# the build box')
    assert remove_user_table(text, "olga") == FARM


def test_table_edits_refuse_duplicates_unknown_users_and_reserved_names() -> None:
    text = add_user_table(FARM, "olga", "ops")
    with pytest.raises(UserError, match="already exists"):
        add_user_table(text, "olga", "ops")
    with pytest.raises(UserError, match="not declared"):
        remove_user_table(text, "rita")
    with pytest.raises(UserError, match="reserved"):
        add_user_table(FARM, "github", "ops")
    with pytest.raises(UserError, match="not one of"):
        add_user_table(FARM, "olga", "admin")


def test_spec_accepts_the_two_roles(spec_path: Path) -> None:
    spec_path.write_text(add_user_table(add_user_table(FARM, "olga", "ops"), "rita", "release-manager"))
    roles = {name: user["role"] for name, user in load_spec(spec_path).users.items()}
    assert roles == {"olga": "ops", "rita": "release-manager"}


@pytest.mark.parametrize("table, message", [
    ('[users.olga]\nrole = "admin"\n', "needs role"),
    ('[users.olga]\nrole = "ops"\npassword = "hunter2"\n', "unknown field 'password'"),
    ('[users."../x"]\nrole = "ops"\n', "path separator"),
    ('[users.github]\nteams = { "acme/ops" = "ops" }\n', "client_id"),
    ('[users.github]\nclient_id = "Iv1.x"\nteams = { "acme" = "ops" }\n', "ORG/TEAM"),
    ('[users.github]\nclient_id = "Iv1.x"\nteams = { "acme/ops" = "admin" }\n', "ORG/TEAM"),
    ('[users.github]\nclient_id = "Iv1.x"\nserver_url = "http://ghe"\nteams = { "acme/ops" = "ops" }\n',
     "https"),
    ('[users.github]\nclient_id = "Iv1.x"\nteams = { "acme/ops" = "ops" }\n[users.olga]\nrole = "ops"\n',
     "replaces passwords"),
])
def test_spec_refuses_bad_user_tables(spec_path: Path, table: str, message: str) -> None:
    spec_path.write_text(FARM + "\n" + table)
    with pytest.raises(SpecError, match=message):
        load_spec(spec_path)


def test_spec_accepts_github_sign_in(spec_path: Path) -> None:
    spec_path.write_text(FARM + '\n[users.github]\nclient_id = "Iv1.abc"\n'
                                'teams = { "acme/release-team" = "release-manager", "acme/ops" = "ops" }\n')
    assert load_spec(spec_path).users["github"]["client_id"] == "Iv1.abc"


# --- velofarm user -------------------------------------------------------------------------------

def test_user_add_generates_a_password_shown_once_and_stores_only_its_hash(
        spec_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["user", "add", "olga", "--role", "ops", "--generate", "--spec", str(spec_path)]) == 0
    out = capsys.readouterr().out
    password = out.split("(shown once, store it now): ")[1].strip()
    assert len(password) >= 20
    assert out.count(password) == 1
    text = spec_path.read_text()
    assert text.startswith(FARM) and text.endswith('[users.olga]\nrole = "ops"\n')
    assert password not in text
    stored = secret_file(spec_path, "olga")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert password not in stored.read_text()
    assert verify_password(password, SecretStore(stored.parent).get("user-olga"))


def test_user_add_prompts_twice(spec_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["typed password 1", "typed password 1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "add", "rita", "--role", "release-manager", "--spec", str(spec_path)]) == 0
    assert "typed password" not in capsys.readouterr().out
    assert verify_password("typed password 1", secret_file(spec_path, "rita").read_text().strip())


def test_user_add_with_mismatched_prompts_changes_nothing(spec_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["typed password 1", "typed password 2"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "add", "rita", "--role", "ops", "--spec", str(spec_path)]) == 1
    assert "differ" in capsys.readouterr().err
    assert spec_path.read_text() == FARM
    assert not secret_file(spec_path, "rita").exists()


def test_user_add_refuses_a_farm_that_signs_in_with_github(spec_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    before = FARM + '\n[users.github]\nclient_id = "Iv1.abc"\nteams = { "acme/ops" = "ops" }\n'
    spec_path.write_text(before)
    assert main(["user", "add", "olga", "--role", "ops", "--generate", "--spec", str(spec_path)]) == 1
    assert "replaces passwords" in capsys.readouterr().err
    assert spec_path.read_text() == before
    assert not secret_file(spec_path, "olga").exists()


def test_user_passwd_list_and_remove(spec_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["user", "add", "olga", "--role", "ops", "--generate", "--spec", str(spec_path)]) == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a brand new password\n"))
    assert main(["user", "passwd", "olga", "--password-stdin", "--spec", str(spec_path)]) == 0
    assert verify_password("a brand new password", secret_file(spec_path, "olga").read_text().strip())
    capsys.readouterr()
    assert main(["user", "list", "--spec", str(spec_path)]) == 0
    assert capsys.readouterr().out.split() == ["olga", "ops", "password", "set"]
    assert main(["user", "remove", "olga", "--spec", str(spec_path)]) == 0
    assert spec_path.read_text() == FARM
    assert not secret_file(spec_path, "olga").exists()
    assert main(["user", "passwd", "olga", "--generate", "--spec", str(spec_path)]) == 1
