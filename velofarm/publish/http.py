"""A small retrying HTTP client for the forges' REST APIs (GitHub, Gitea/Forgejo), standard library only.

Reads (GET) are retried: rate limits are waited out, 5xx and dropped connections backed off.
Writes are retried only after a rate-limit refusal (the forge did not act on them); after a 5xx or a
dropped connection the write may or may not have happened, so `WriteUncertain` is raised and the
caller re-checks the state (`write_checked`) before deciding. The token never appears in a message,
log line or repr; a download sends it only to the API's own origin (never to a redirect's storage host).
What differs between the forges at the HTTP level (auth scheme, media type, the fix for a refused
token) is a `Forge` value. The token is sent only to
the configured API host and its uploads host, over https (plain http only to a loopback test
server): a URL a response names (a pagination link, `upload_url`) is checked first.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from velofarm import __version__
from velofarm.errors import PublishError

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
GITHUB_API_HOST, GITHUB_UPLOADS_HOST = "api.github.com", "uploads.github.com"


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class TokenHosts:
    """Where the token may go: the API's origin and its uploads origin (github.com keeps uploads
    on uploads.github.com; Enterprise on the API's own host). https only, except on loopback."""

    def __init__(self, api_url: str) -> None:
        parts = urllib.parse.urlsplit(api_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise PublishError(f"API URL {api_url!r}: expected https://HOST[/PATH]")
        if parts.scheme != "https" and not is_loopback(parts.hostname):
            raise PublishError(f"API URL {api_url!r}: use https:// (plain http is only for a loopback "
                               "test server); the token would travel in clear text")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.origins = {(parts.scheme, parts.netloc.lower())}
        if parts.hostname == GITHUB_API_HOST:
            self.origins.add(("https", GITHUB_UPLOADS_HOST))

    def check(self, url: str) -> None:
        """Raise unless the token may be sent to `url`."""
        parts = urllib.parse.urlsplit(url)
        if (parts.scheme, parts.netloc.lower()) in self.origins:
            return
        if is_loopback(self.host) and (parts.scheme, parts.hostname) == (self.scheme, self.host):
            return  # a loopback stand-in serves uploads on a second port of the same address
        raise PublishError(f"refusing to send the token to {parts.scheme}://{parts.netloc}: the forge named "
                           f"it in a response, but only {', '.join(sorted(f'{s}://{n}' for s, n in self.origins))}"
                           " are trusted; check the API URL (github_api_url, gitea_url), or a proxy rewriting the answers")


REDIRECTS = (301, 302, 303, 307, 308)
T = TypeVar("T")


@dataclass(frozen=True)
class Forge:
    """How one forge's API is spoken: its name in messages, auth scheme, media type, extra headers."""

    name: str
    auth_scheme: str  # "Bearer" (GitHub) or "token" (Gitea/Forgejo: lower-case, 1.22 compares it exactly)
    accept: str
    headers: tuple[tuple[str, str], ...] = ()
    token_fix: str = "check the token"  # what to do when the token is refused; {scope} is the repository


GITHUB = Forge("GitHub", "Bearer", MEDIA_TYPE, (("X-GitHub-Api-Version", API_VERSION),),
               "check the github-token secret is valid and has contents:write on {scope}")
# Forgejo answers GitHub-shaped JSON to a GitHub Accept header: ask for its own shape.
GITEA = Forge("Gitea", "token", "application/json", (),
              "check the gitea-token secret is valid, its user may write releases of {scope}, "
              "and a scoped token has write:repository")


class AuthError(PublishError):
    """The forge refused the token (401, or a 403 that is not a rate limit): retrying cannot help."""


class WriteUncertain(PublishError):
    """A write got a 5xx or lost its connection: it may have been applied. Re-check, then decide."""


class ApiError(PublishError):
    """The forge answered a 4xx the caller may handle (404, 409, 422 ...)."""

    def __init__(self, message: str, status: int, payload: Any) -> None:
        super().__init__(message)
        self.status = status
        self.payload = payload

    def has_code(self, code: str) -> bool:
        """True when the 422 `errors` list holds an error with this `code` (e.g. already_exists)."""
        errors = self.payload.get("errors") if isinstance(self.payload, dict) else None
        return any(isinstance(e, dict) and e.get("code") == code for e in errors or ())


class Response:
    """A decoded answer: status, lower-cased headers, parsed JSON (None when empty)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str], data: Any) -> None:
        self.status, self.reason, self.headers, self.data = status, reason, headers, data

    @property
    def message(self) -> str:
        msg = self.data.get("message") if isinstance(self.data, dict) else None
        return str(msg) if msg else self.reason


class HttpClient:
    """JSON, streaming-upload and hashing-download client for one forge API base URL."""

    def __init__(self, api_url: str, token: str, *, forge: Forge = GITHUB, log: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 scope: str = "the repository", max_retries: int = 6, max_total_wait: float = 900.0,
                 min_write_interval: float = 1.0, timeout: float = 60.0, chunk_size: int = 1 << 20,
                 user_agent: str = f"velofarm/{__version__}") -> None:
        self.api_url = api_url.rstrip("/")
        self.forge = forge
        self.token_hosts = TokenHosts(self.api_url)
        self.__token = token
        self.log, self.sleep, self.clock, self.scope = log, sleep, clock, scope
        self.max_retries, self.max_total_wait = max_retries, max_total_wait
        self.min_write_interval, self.timeout, self.chunk_size = min_write_interval, timeout, chunk_size
        self.user_agent = user_agent
        self._last_write = float("-inf")

    def __repr__(self) -> str:
        return f"HttpClient({self.api_url!r}, token=<hidden>)"

    # -- public verbs ---------------------------------------------------------------------------
    def get(self, url: str, params: Mapping[str, object] | None = None) -> Any:
        """GET a JSON document; retried on rate limits, 5xx and dropped connections."""
        return self._call("GET", self._url(url, params)).data

    def get_pages(self, url: str, params: Mapping[str, object] | None = None) -> Iterator[Any]:
        """Every item of a paginated list, following `Link: <...>; rel="next"`."""
        next_url: str | None = self._url(url, params)
        while next_url:
            resp = self._call("GET", next_url)
            if not isinstance(resp.data, list):
                raise PublishError(f"GET {_display(next_url)}: expected a JSON list from {self.forge.name}")
            yield from resp.data
            match = LINK_NEXT.search(resp.headers.get("link", ""))
            next_url = match.group(1) if match else None

    def post(self, url: str, body: Mapping[str, object]) -> Any:
        return self._call("POST", self._url(url), json_body=body).data

    def patch(self, url: str, body: Mapping[str, object]) -> Any:
        return self._call("PATCH", self._url(url), json_body=body).data

    def delete(self, url: str) -> None:
        self._call("DELETE", self._url(url))

    def delete_if_present(self, url: str) -> bool:
        """DELETE where "already gone" (404) is the wanted outcome too; True either way."""
        try:
            self.delete(url)
        except ApiError as exc:
            if exc.status != 404:
                raise
        return True

    def upload(self, url: str, path: Path, content_type: str, form_field: str = "") -> Any:
        """POST a file streamed from disk (a fresh stream on every attempt): the raw bytes, or, with
        `form_field`, the one file part of a multipart/form-data body (Gitea's attachment form)."""
        return self._call("POST", self._url(url), upload=(Path(path), content_type, form_field)).data

    def download(self, url: str, max_redirects: int = 5) -> tuple[int, str]:
        """(size, sha256 hex) of a file, streamed and hashed, never held in memory; redirects are
        followed (Gitea's SERVE_DIRECT hands out storage URLs), the token goes to the API's origin only."""
        url = self._url(url)
        for _ in range(max_redirects + 1):
            resp = self._call("GET", url, download=True)
            if resp.status not in REDIRECTS:
                size, digest = resp.data
                return int(size), str(digest)
            url = urllib.parse.urljoin(url, resp.headers.get("location", ""))
        raise PublishError(f"GET {_display(url)}: more than {max_redirects} redirects")

    def write_checked(self, what: str, do: Callable[[], T], check: Callable[[], T | None],
                      attempts: int) -> T:
        """Run a write; when its outcome is uncertain, re-check the state before trying again."""
        for attempt in range(attempts):
            try:
                return do()
            except WriteUncertain as exc:
                self.backoff(attempt, str(exc))
            done = check()
            if done is not None:
                self.log(f"{self.scope}: {what}: it went through after all")
                return done
        raise PublishError(f"{self.scope}: {what} failed {attempts} times ({self.forge.name} errors or "
                           "dropped connections); re-run the publish later, it resumes where it stopped")

    def backoff(self, attempt: int, why: str) -> None:
        """Wait before the caller's own retry of a write (attempt counts from 0)."""
        delay = min(2.0 ** attempt, 60.0)
        self.log(f"{why}; retrying in {delay:.0f}s")
        self.sleep(delay)

    # -- the retry loop ---------------------------------------------------------------------------
    def _call(self, method: str, url: str, json_body: Mapping[str, object] | None = None,
              upload: tuple[Path, str, str] | None = None, download: bool = False) -> Response:
        write = method != "GET"
        what = f"{method} {_display(url)}"
        waited = 0.0
        for attempt in range(self.max_retries + 1):
            if write:
                self._space_writes()
            try:
                resp = self._send(method, url, json_body, upload, download)
            except (OSError, http.client.HTTPException) as exc:
                reason = f"connection lost ({type(exc).__name__}: {exc})"
                if write:
                    raise WriteUncertain(f"{what}: {reason}; it may or may not have been applied") from exc
                delay = self._exponential(attempt)
            else:
                if resp.status < 300 or (download and resp.status in REDIRECTS):
                    return resp
                delay_or_none = self._rate_limit_delay(resp, attempt)
                if delay_or_none is None:
                    self._raise_for(resp, what, write)
                    delay, reason = self._exponential(attempt), f"{resp.status} {resp.message}"
                else:
                    delay, reason = delay_or_none, f"rate limited ({resp.status} {resp.message})"
            if attempt == self.max_retries or waited + delay > self.max_total_wait:
                raise PublishError(f"{what}: giving up after {attempt + 1} attempts and {waited:.0f}s "
                                   f"of waiting ({reason}); re-run the publish later, it resumes")
            self.log(f"{what}: {reason}; retrying in {delay:.0f}s")
            self.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")

    def _raise_for(self, resp: Response, what: str, write: bool) -> None:
        """Raise unless the answer is a 5xx on a read (which the loop retries)."""
        if resp.status in (401, 403):
            raise AuthError(f"{self.forge.name} refused the token ({resp.status} {resp.message}) for "
                            f"{what}: {self.forge.token_fix.format(scope=self.scope)}")
        if resp.status < 400:  # these endpoints do not redirect unless the repository was renamed
            raise ApiError(f"{what}: {self.forge.name} answered {resp.status} (moved to {resp.headers.get('location')}); "
                           "update the repository name in the configuration", resp.status, resp.data)
        if resp.status >= 500:
            if write:
                raise WriteUncertain(f"{what}: {self.forge.name} answered {resp.status} {resp.message}; "
                                     "it may or may not have been applied")
            return
        detail = json.dumps(resp.data.get("errors")) if isinstance(resp.data, dict) and \
            resp.data.get("errors") else ""
        raise ApiError(f"{what}: {self.forge.name} answered {resp.status} {resp.message} {detail}".rstrip(),
                       resp.status, resp.data)

    def _rate_limit_delay(self, resp: Response, attempt: int) -> float | None:
        """Seconds to wait when the answer is a rate limit, None when it is not one."""
        if resp.status not in (403, 429):
            return None
        retry_after = resp.headers.get("retry-after", "").strip()
        if retry_after:
            try:
                return max(float(retry_after), 0.0)
            except ValueError:
                pass
        if resp.headers.get("x-ratelimit-remaining", "").strip() == "0":
            try:
                reset = float(resp.headers.get("x-ratelimit-reset", ""))
            except ValueError:
                return self._exponential(attempt)
            return max(reset - self.clock(), 0.0) + 1.0  # a second of slack for clock skew
        if resp.status == 429 or "rate limit" in resp.message.lower():
            return max(self._exponential(attempt), 60.0)  # GitHub: wait at least a minute
        return None

    def _exponential(self, attempt: int) -> float:
        return min(2.0 ** attempt, 60.0)

    def _space_writes(self) -> None:
        gap = self.min_write_interval - (time.monotonic() - self._last_write)
        if gap > 0:
            self.sleep(gap)
        self._last_write = time.monotonic()

    # -- one exchange ----------------------------------------------------------------------------
    def _send(self, method: str, url: str, json_body: Mapping[str, object] | None,
              upload: tuple[Path, str, str] | None, download: bool = False) -> Response:
        parts = urllib.parse.urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.netloc, timeout=self.timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Accept": "*/*" if download else self.forge.accept, **dict(self.forge.headers),
                   "User-Agent": self.user_agent}
        if not download or _origin(url) == _origin(self.api_url):  # a storage host gets no token
            self.token_hosts.check(url)  # ...and neither does any host but the API's and its uploads'
            headers["Authorization"] = f"{self.forge.auth_scheme} {self.__token}"
        try:
            if upload is not None:
                self._send_file(conn, target, headers, *upload)
            else:
                body = json.dumps(json_body).encode() if json_body is not None else None
                if body is not None:
                    headers["Content-Type"] = "application/json"
                conn.request(method, target, body=body, headers=headers)
            raw = conn.getresponse()
            resp_headers = {k.lower(): v for k, v in raw.getheaders()}
            if download and raw.status < 300:
                return Response(raw.status, raw.reason, resp_headers, self._hash_body(raw))
            payload = raw.read()
            try:
                data = json.loads(payload) if payload.strip() else None
            except ValueError:
                if raw.status < 400:
                    raise http.client.HTTPException("the answer is not JSON") from None
                data = None  # an error page from a proxy: the status says enough
            return Response(raw.status, raw.reason, resp_headers, data)
        finally:
            conn.close()

    def _send_file(self, conn: http.client.HTTPConnection, target: str, headers: dict[str, str],
                   path: Path, content_type: str, form_field: str) -> None:
        """Send headers then the file in fixed-size chunks: memory does not grow with the file."""
        head, tail = b"", b""
        if form_field:  # one file part; the length is known up front, so no chunked encoding
            boundary = f"velofarm-{uuid.uuid4().hex}"
            filename = path.name.replace("\\", "_").replace('"', "_")
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{form_field}\"; "
                    f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
            tail = f"\r\n--{boundary}--\r\n".encode()
            content_type = f"multipart/form-data; boundary={boundary}"
        with open(path, "rb") as fh:
            size = len(head) + path.stat().st_size + len(tail)
            conn.putrequest("POST", target, skip_accept_encoding=True)
            for key, value in {**headers, "Content-Type": content_type,
                               "Content-Length": str(size)}.items():
                conn.putheader(key, value)
            conn.endheaders()
            if head:
                conn.send(head)
            buf = bytearray(self.chunk_size)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                conn.send(view[:n])
            if tail:
                conn.send(tail)

    def _hash_body(self, raw: http.client.HTTPResponse) -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        while chunk := raw.read(self.chunk_size):
            digest.update(chunk)
            size += len(chunk)
        # http.client ends a body cut short by a closed connection like a complete one (read()
        # returns b"" without IncompleteRead); hashing it would call a good asset corrupt.
        expected = raw.getheader("Content-Length")
        if expected is not None and expected.isdigit() and size != int(expected):
            raise http.client.IncompleteRead(b"", int(expected) - size)
        return size, digest.hexdigest()

    def _url(self, url: str, params: Mapping[str, object] | None = None) -> str:
        full = url if "://" in url else self.api_url + url
        if params:
            full += ("&" if "?" in full else "?") + urllib.parse.urlencode(params)
        return full


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _display(url: str) -> str:
    """The URL without scheme and host, for messages."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
