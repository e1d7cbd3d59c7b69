"""The signed webhook endpoint: its own small HTTP site in the master process.

Buildbot's change hook answers 400 for every refusal and its GitHub dialect checks only SHA-1
signatures; this endpoint refuses unsigned deliveries with 401, bad signatures with 403, and
hands tag pushes to the same change pipeline as the poller and the push hook.
"""

from __future__ import annotations

from typing import Any

from buildbot.util import service
from twisted.internet import defer, endpoints, reactor
from twisted.python import log
from twisted.web import resource, server

from velofarm.tags.webhook import EVENT_HEADERS, SIGNATURE_HEADERS, parse_event, verify_signature

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


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
        event = next((request.getHeader(h) for h in EVENT_HEADERS if request.getHeader(h)), "") or ""
        push, reason = parse_event(event, body)
        if push is None:
            log.msg(f"velofarm webhook: ignored: {reason}")
            return self._answer(request, 200, f"ignored: {reason}")
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
            root = resource.Resource()
            root.putChild(b"webhook", WebhookResource(self))
            self.listener = yield endpoints.serverFromString(reactor, port).listen(server.Site(root))

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
