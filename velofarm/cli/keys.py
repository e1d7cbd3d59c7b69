"""`velofarm keys init|rotate|show`: the farm's signing keys (private: secrets folder; public: keys/)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from velofarm.release.keys import (
    ALLOWED_SIGNERS,
    MINISIGN_PUB,
    PROVENANCE_PUB,
    SSH_PUB,
    init_keys,
    load_signing_keys,
    minisign_key_id_hex,
    provenance_key_id,
    rotate_keys,
)
from velofarm.secretstore import SecretStore


def farm_keys_dir(spec: Any) -> Path:
    """The public keys live in keys/ beside farm.toml: the checkout, where they are committed."""
    return Path(spec.resolve("keys"))


def _paths(args: argparse.Namespace) -> tuple[SecretStore, Path]:
    from velofarm.spec.farm import load_spec
    spec = load_spec(args.spec)
    return SecretStore(spec.resolve(spec.master.secrets_dir)), farm_keys_dir(spec)


def _describe(store: SecretStore, keys_dir: Path) -> None:
    keys = load_signing_keys(store, keys_dir)  # also proves the private and public halves match
    print(f"  minisign   {keys_dir / MINISIGN_PUB} (key id {minisign_key_id_hex(keys.minisign_id)})")
    print(f"  ssh        {keys_dir / SSH_PUB}, {keys_dir / ALLOWED_SIGNERS}")
    print(f"  provenance {keys_dir / PROVENANCE_PUB} (DSSE keyid {provenance_key_id(keys.provenance.public_key())[:16]}…)")
    print(f"  private keys: {store.directory} (mode 0600; never commit them)")


def cmd_keys_init(args: argparse.Namespace) -> int:
    store, keys_dir = _paths(args)
    init_keys(store, keys_dir)
    print(f"created the farm's signing keys; commit {keys_dir}:")
    _describe(store, keys_dir)
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    store, keys_dir = _paths(args)
    rotate_keys(store, keys_dir)
    print(f"new signing keys; the old public keys are in {keys_dir / 'retired'} and still listed in "
          f"{ALLOWED_SIGNERS}, so older releases still verify. Commit {keys_dir}:")
    _describe(store, keys_dir)
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    store, keys_dir = _paths(args)
    print("the farm's signing keys (private and public halves match):")
    _describe(store, keys_dir)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="the farm's signing keys", description="the farm's signing keys")
    group = p.add_subparsers(dest="keys_command", required=True)
    for name, func, text in (("init", cmd_keys_init, "create the keys (private: secrets folder; public: keys/)"),
                             ("rotate", cmd_keys_rotate, "replace the keys; old public keys stay trusted"),
                             ("show", cmd_keys_show, "check the keys and show where they are")):
        q = group.add_parser(name, help=text, description=text)
        q.add_argument("--spec", default="farm.toml", help="the farm spec (default: ./farm.toml)")
        q.set_defaults(func=func)
