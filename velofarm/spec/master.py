"""farm.toml's [master] table: where the master listens, keeps its state, and how it guards itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from velofarm.errors import SpecError
from velofarm.spec.platforms import suggest


@dataclass(frozen=True)
class MasterSettings:
    www_bind: str = "127.0.0.1"
    www_port: int = 8010
    url: str = "http://127.0.0.1:8010/"
    pb_port: int = 9989
    pb_bind: str = "127.0.0.1"  # "0.0.0.0" when workers on other machines connect
    db_url: str = "sqlite:///state.sqlite"
    db_url_secret: str = ""
    poll_interval: int = 60
    webhook_port: int = 0  # 0: no webhook endpoint
    upload_port: int = 0  # where workers upload archives; 0: any free port (fine on one machine)
    upload_url: str = ""  # what workers use to reach upload_port through a proxy or tunnel
    secrets_dir: str = "secrets"
    artifacts_dir: str = "artifacts"
    worker_registry: str = "workers/registry.toml"  # workers added by `velofarm worker add`
    public_host: str = "127.0.0.1"  # the host name workers use to reach the master's pb_port
    keep_tags: int = 0  # artifacts of this many newest tags kept by `velofarm artifacts prune`; 0: all
    session_hours: int = 12  # how long a web UI sign-in lasts
    pb_tls: bool = False  # TLS for workers (PB and uploads): master-tls.crt/.key in the secrets folder



def parse_master(table: Any, where: str) -> MasterSettings:
    """farm.toml's [master] table, validated; `where` names it in messages."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: must be a table")
    defaults = MasterSettings()
    allowed = sorted(defaults.__dataclass_fields__)
    for key in table:
        if key not in allowed:
            raise SpecError(f"{where}: unknown field '{key}'{suggest(key, allowed)}; allowed: {', '.join(allowed)}")
    for key in ("www_port", "pb_port", "poll_interval", "webhook_port", "upload_port", "keep_tags",
                "session_hours"):
        value = table.get(key, getattr(defaults, key))
        low = 0 if key in ("poll_interval", "webhook_port", "upload_port", "keep_tags") else 1
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 65535:
            raise SpecError(f"{where}.{key}: must be a whole number from {low} to 65535, got {value!r}")
    for key, default in defaults.__dict__.items():
        kind = type(default)
        if kind in (str, bool) and key in table and not isinstance(table[key], kind):
            raise SpecError(f"{where}.{key}: must be {'a string' if kind is str else 'true or false'}, "
                            f"got {table[key]!r}")
    if "db_url" in table and "db_url_secret" in table:
        raise SpecError(f"{where}: set db_url or db_url_secret, not both")
    db_url = str(table.get("db_url", defaults.db_url))
    if "@" in db_url and ":" in db_url.split("@")[0].split("//")[-1]:
        raise SpecError(f"{where}.db_url: holds a password; keep it in the secrets directory and set "
                        "db_url_secret = \"db_url\" instead")
    return MasterSettings(**{**defaults.__dict__, **table})
