"""The signed webhook endpoint: its own small HTTP site in the master process.

Buildbot's change hook answers 400 for every refusal and its GitHub dialect checks only SHA-1
signatures; this endpoint refuses unsigned deliveries with 401, bad signatures with 403, a
delivery for another repository (an organisation-wide hook) with 403, a replayed delivery id with
409, a body over the limit with 413 (by Content-Length, before reading it), and hands tag pushes
to the same change pipeline as the poller and the push hook.
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path
from typing import Any

from buildbot.util import service
from twisted.internet import defer, endpoints, reactor
from twisted.python import log
from twisted.web import resource, server

from velofarm.tags.webhook import (
    DELIVERY_HEADERS,
    EVENT_HEADERS,
    SIGNATURE_HEADERS,
    is_for_repository,
    parse_event,
    verify_signature,
)

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
KEEP_DELIVERIES = 1000  # delivery ids remembered (in the master folder) to refuse replays
DELIVERIES_FILE = "webhook-deliveries.json"


class LimitedRequest(server.Request):
    """Refuses a body over MAX_BODY as soon as it is announced (Content-Length) or, for a chunked
    body, as soon as it passes the limit: Twisted would otherwise buffer all of it first."""

    max_body = MAX_BODY
    _received = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body:
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.max_body:
            self._refuse()
            return
        super().handleContentChunk(data)

    def _refuse(self) -> None:
        self._refused = True
        text = f"payload too large: the limit is {self.max_body} bytes\n".encode()
        transport = self.channel.transport
        transport.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))
        transport.loseConnection()


class WebhookResource(resource.Resource):
    isLeaf = True

    def __init__(self, hook: WebhookService) -> None:
        super().__init__()
        self.hook = hook

    def render_POST(self, request: server.Request) -> bytes | int:
        body = request.content.read(MAX_BODY + 1) if request.content else b""
        if len(body) > MAX_BODY:
            return self._answer(request, 413, "payload too large")
        signature = next((request.getHeader(h) for h in SIGNATURE_HEADERS if request.getHeader(h)), None)
        if not signature:
            return self._answer(request, 401, "unsigned delivery refused: configure the webhook secret")
        if not verify_signature(self.hook.secret, body, signature):
            return self._answer(request, 403, "bad signature: the webhook secret does not match")
        delivery = next((request.getHeader(h) for h in DELIVERY_HEADERS if request.getHeader(h)), None)
        if not delivery:
            return self._answer(request, 400, f"no delivery id: send one of {', '.join(DELIVERY_HEADERS)}")
        if not self.hook.deliveries.first_time(delivery):
            log.msg(f"velofarm webhook: refused replayed delivery {delivery}")
            return self._answer(request, 409, f"delivery {delivery} was already received; replay refused")
        event = next((request.getHeader(h) for h in EVENT_HEADERS if request.getHeader(h)), "") or ""
        push, reason = parse_event(event, body)
        if push is None:
            log.msg(f"velofarm webhook: ignored: {reason}")
            return self._answer(request, 200, f"ignored: {reason}")
        if not is_for_repository(push, self.hook.repository):
            named = push.repository or "no repository"
            log.msg(f"velofarm webhook: refused delivery {delivery} for {named}")
            return self._answer(request, 403, f"delivery is for {named}, but this farm releases "
                                              f"{self.hook.repository} (project.git_url); only its tags release")
        d = self.hook.add_change(push)
        d.addCallbacks(lambda _: self._finish(request, 202, f"accepted: {push.ref}"),
                       lambda f: (log.err(f, "velofarm webhook"), self._finish(request, 500, "error")))
        return server.NOT_DONE_YET

    def render_GET(self, request: server.Request) -> bytes:
        return self._answer(request, 405, "POST webhook deliveries here")

    @staticmethod
    def _answer(request: server.Request, code: int, text: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (text + "\n").encode()

    def _finish(self, request: server.Request, code: int, text: str) -> None:
        if not request.finished:
            request.write(self._answer(request, code, text))
            request.finish()


class WebhookService(service.BuildbotService):
    """Listens on [master] webhook_port; path /webhook (GitHub, Gitea and Forgejo deliveries)."""

    name = "velofarm-webhook"

    def checkConfig(self, port: str, secret: str, repository: str) -> None:  # type: ignore[override]
        if not secret:
            from buildbot import config
            config.error("velofarm webhook: the webhook-secret secret is empty")

    @defer.inlineCallbacks
    def reconfigService(self, port: str, secret: str, repository: str) -> Any:  # type: ignore[override]
        self.secret = secret
        self.repository = repository
        if getattr(self, "port_spec", None) != port:
            yield self._stop_listening()
            self.port_spec = port
            self.deliveries = DeliveryLog(Path(self.master.basedir) / DELIVERIES_FILE)
            root = resource.Resource()
            root.putChild(b"webhook", WebhookResource(self))
            site = server.Site(root, requestFactory=LimitedRequest)
            self.listener = yield endpoints.serverFromString(reactor, port).listen(site)

    def add_change(self, push: Any) -> Any:
        return self.master.data.updates.addChange(
            author=push.who, committer=push.who, files=[], comments=f"{push.ref} (webhook)",
            revision=push.revision or None, branch=push.ref, category="tag",
            repository=self.repository, project="", src="git")

    @defer.inlineCallbacks
    def _stop_listening(self) -> Any:
        listener = getattr(self, "listener", None)
        if listener is not None:
            yield listener.stopListening()
            self.listener = None

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        yield self._stop_listening()
        yield super().stopService()


class DeliveryLog:
    """The last KEEP_DELIVERIES delivery ids, kept in the master folder so a restart forgets none.

    Delivery ids are not covered by the signature, so this stops a redelivered or captured
    delivery, not a forger who changes the id; that a tag releases once is the deeper guard.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            ids = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            ids = []
        self.ids: collections.deque[str] = collections.deque(
            (str(i) for i in ids if isinstance(i, str)), maxlen=KEEP_DELIVERIES)

    def first_time(self, delivery: str) -> bool:
        """Record `delivery`; False when it was seen before."""
        if delivery in self.ids:
            return False
        self.ids.append(delivery)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(list(self.ids)), encoding="utf-8")
        os.replace(tmp, self.path)
        return True
