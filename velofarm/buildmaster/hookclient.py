"""The push hook's client: sends pushed tags to the master's PB change source."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from buildbot.clients.sendchange import Sender
from twisted.cred import credentials
from twisted.internet import defer, task

from velofarm.tags.notify import CHANGE_USER, pushed_tags


class TlsSender(Sender):
    """Buildbot's Sender over TLS (pb_tls = true), trusting only the farm's CA."""

    def __init__(self, master: str, auth: tuple[str, str], ca_file: Path) -> None:
        super().__init__(master, auth=auth)
        self.ca_pem = ca_file.read_bytes()

    @defer.inlineCallbacks
    def send(self, **change: Any) -> Any:
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
        from twisted.internet.ssl import Certificate, optionsForClientTLS
        from twisted.spread import pb

        options = optionsForClientTLS(self.host, trustRoot=Certificate.loadPEM(self.ca_pem))
        factory = pb.PBClientFactory()
        login = factory.login(credentials.UsernamePassword(self.username, self.password))
        yield wrapClientTLS(options, TCP4ClientEndpoint(reactor, self.host, self.port)).connect(factory)
        remote = yield login
        body = {"project": "", "when": None, "properties": {}, "revlink": "", **change}
        body["src"] = body.pop("vc", None)
        body["files"] = list(body.get("files", []))
        yield remote.callRemote("addChange", body)
        yield remote.broker.transport.loseConnection()


def send_tag_changes(master: str, password_file: Path, repository: str, lines: IO[str],
                     ca_file: Path | None = None) -> int:
    """Send one change per pushed tag; returns a process exit status."""
    tags = pushed_tags(lines)
    if not tags:
        return 0
    password = password_file.read_text(encoding="utf-8").strip()
    sender = (TlsSender(master, (CHANGE_USER, password), ca_file) if ca_file
              else Sender(master, auth=(CHANGE_USER, password)))

    @defer.inlineCallbacks
    def send_all(_reactor: object) -> object:
        for ref, sha in tags:
            yield sender.send(branch=ref, revision=sha, comments=f"tag {ref} pushed", files=[],
                              who="velofarm-hook", category="tag", repository=repository, vc="git")
            print(f"velofarm: told the master about {ref}")

    try:
        task.react(send_all)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
