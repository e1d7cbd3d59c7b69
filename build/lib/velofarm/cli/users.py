"""`velofarm user add|remove|passwd|list`: users in farm.toml, password hashes in the secrets folder."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from velofarm.secretstore import SecretStore
from velofarm.spec.farm import Spec, load_spec, parse_spec
from velofarm.users import (
    ROLES,
    UserError,
    add_user_table,
    check_password_policy,
    check_role,
    check_user_name,
    generate_password,
    hash_password,
    remove_user_table,
    user_secret_name,
)

APPLY = "apply it to a running master with: buildbot reconfig MASTER_DIR"


def register(sub: Any) -> None:
    """Add the `user` command group to the velofarm parser."""
    group = sub.add_parser("user", help="web UI users: add, remove, passwd, list",
                           description="Web UI users. Roles live in farm.toml; password hashes in the "
                                       "secrets folder (user-NAME, mode 0600), never in git.")
    users = group.add_subparsers(dest="user_command", required=True)

    def add(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p = users.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        p.add_argument("--spec", default="farm.toml", help="the farm spec (default: ./farm.toml)")
        return p

    p = add("add", cmd_user_add, "declare a user with a role and set its password")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    _password_options(p)
    p = add("passwd", cmd_user_passwd, "set a new password for a user")
    p.add_argument("name")
    _password_options(p)
    p = add("remove", cmd_user_remove, "remove a user and its password hash")
    p.add_argument("name")
    add("list", cmd_user_list, "list users, roles and whether a password is set")


def _password_options(p: argparse.ArgumentParser) -> None:
    how = p.add_mutually_exclusive_group()
    how.add_argument("--generate", action="store_true", help="generate a password and show it once")
    how.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input (for scripts)")


def _store(spec: Spec) -> SecretStore:
    return SecretStore(spec.resolve(spec.master.secrets_dir))


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new password and whether it was generated (and so must be shown once)."""
    if args.generate:
        return generate_password(), True
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UserError("the two passwords differ; nothing changed")
    check_password_policy(password)
    return password, False


def _checked(spec: Spec, text: str, name: str, present: bool) -> str:
    """The edited farm.toml text, refused unless it is a valid spec with the user (not) in it."""
    import tomllib

    try:
        edited = parse_spec(tomllib.loads(text), spec.path)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{spec.path.name}: the edit would not be valid TOML ({exc}); declare the user "
                        f"by hand as a [users.{name}] table") from None
    if (name in edited.users) != present:
        raise UserError(f"{spec.path.name}: users are declared in a form velofarm cannot edit; declare "
                        f"each as a [users.NAME] table")
    return text


def _replace(path: Path, text: str) -> None:
    """Write farm.toml through a temporary file and one rename: never half-written."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _show(args: argparse.Namespace, password: str, generated: bool) -> None:
    if generated:
        print(f"password for {args.name} (shown once, store it now): {password}")


def cmd_user_add(args: argparse.Namespace) -> int:
    check_user_name(args.name)
    check_role(args.role)
    spec = load_spec(args.spec)
    if args.name in spec.users:
        raise UserError(f"user '{args.name}' already exists in {spec.path.name}; to change the role, "
                        f"remove it and add it again")
    text = _checked(spec, add_user_table(spec.path.read_text(encoding="utf-8"), args.name, args.role),
                    args.name, present=True)
    password, generated = _new_password(args)
    store = _store(spec)
    store.put(user_secret_name(args.name), hash_password(password))
    try:
        _replace(spec.path, text)
    except BaseException:
        store.remove(user_secret_name(args.name))  # leave nothing half-added behind
        raise
    print(f"user {args.name} added with role {args.role}; {APPLY}")
    _show(args, password, generated)
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    if args.name not in spec.users:
        raise UserError(f"no user '{args.name}' in {spec.path.name}; add it with: velofarm user add "
                        f"{args.name} --role ops")
    password, generated = _new_password(args)
    _store(spec).put(user_secret_name(args.name), hash_password(password))
    print(f"password of {args.name} changed; it applies at the next sign-in")
    _show(args, password, generated)
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    store = _store(spec)
    if args.name not in spec.users and not store.path(user_secret_name(args.name)).exists():
        raise UserError(f"no user '{args.name}' in {spec.path.name}")
    if args.name in spec.users:
        text = remove_user_table(spec.path.read_text(encoding="utf-8"), args.name)
        _replace(spec.path, _checked(spec, text, args.name, present=False))
    # The hash goes even before a reconfig: the user cannot sign in again from now on.
    store.remove(user_secret_name(args.name))
    print(f"user {args.name} removed; {APPLY}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    store = _store(spec)
    names = sorted(n for n in spec.users if "role" in spec.users[n])
    if not names:
        print(f"no users in {spec.path.name}; add one with: velofarm user add NAME --role ops")
    for name in names:
        has_hash = Path(store.path(user_secret_name(name))).is_file()
        print(f"{name:<24} {spec.users[name]['role']:<16} {'password set' if has_hash else 'NO PASSWORD'}")
    return 0

