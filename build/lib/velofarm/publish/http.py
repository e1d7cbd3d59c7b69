"""A small retrying HTTP client for the GitHub REST API, on the standard library only.

Reads (GET) are retried: rate limits are waited out, 5xx and dropped connections backed off.
Writes are retried only after a rate-limit refusal (GitHub did not act on them); after a 5xx or a
dropped connection the write may or may not have happened, so `WriteUncertain` is raised and the
caller re-checks the state before deciding. The token never appears in a message, log line or repr.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from velofarm import __version__
from velofarm.errors import PublishError

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class AuthError(PublishError):
    """GitHub refused the token (401, or a 403 that is not a rate limit): retrying cannot help."""


class WriteUncertain(PublishError):
    """A write got a 5xx or lost its connection: it may have been applied. Re-check, then decide."""


class ApiError(PublishError):
    """GitHub answered a 4xx the caller may handle (404, 422 ...)."""

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
    """JSON and streaming-upload client for one GitHub API base URL (github.com or Enterprise)."""

    def __init__(self, api_url: str, token: str, *, log: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 scope: str = "the repository", max_retries: int = 6, max_total_wait: float = 900.0,
                 min_write_interval: float = 1.0, timeout: float = 60.0, chunk_size: int = 1 << 20,
                 user_agent: str = f"velofarm/{__version__}") -> None:
        self.api_url = api_url.rstrip("/")
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
                raise PublishError(f"GET {_display(next_url)}: expected a JSON list from GitHub")
            yield from resp.data
            match = LINK_NEXT.search(resp.headers.get("link", ""))
            next_url = match.group(1) if match else None

    def post(self, url: str, body: Mapping[str, object]) -> Any:
        return self._call("POST", self._url(url), json_body=body).data

    def patch(self, url: str, body: Mapping[str, object]) -> Any:
        return self._call("PATCH", self._url(url), json_body=body).data

    def delete(self, url: str) -> None:
        self._call("DELETE", self._url(url))

    def upload(self, url: str, path: Path, content_type: str) -> Any:
        """POST a file's raw bytes, streamed from disk (a fresh stream on every attempt)."""
        return self._call("POST", url, upload=(Path(path), content_type)).data

    def backoff(self, attempt: int, why: str) -> None:
        """Wait before the caller's own retry of a write (attempt counts from 0)."""
        delay = min(2.0 ** attempt, 60.0)
        self.log(f"{why}; retrying in {delay:.0f}s")
        self.sleep(delay)

    # -- the retry loop ---------------------------------------------------------------------------
    def _call(self, method: str, url: str, json_body: Mapping[str, object] | None = None,
              upload: tuple[Path, str] | None = None) -> Response:
        write = method != "GET"
        what = f"{method} {_display(url)}"
        waited = 0.0
        for attempt in range(self.max_retries + 1):
            if write:
                self._space_writes()
            try:
                resp = self._send(method, url, json_body, upload)
            except (OSError, http.client.HTTPException) as exc:
                reason = f"connection lost ({type(exc).__name__}: {exc})"
                if write:
                    raise WriteUncertain(f"{what}: {reason}; it may or may not have been applied") from exc
                delay = self._exponential(attempt)
            else:
                if resp.status < 300:
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
            raise AuthError(f"GitHub refused the token ({resp.status} {resp.message}) for {what}: check "
                            f"the github-token secret is valid and has contents:write on {self.scope}")
        if resp.status < 400:  # these endpoints do not redirect unless the repository was renamed
            raise ApiError(f"{what}: GitHub answered {resp.status} (moved to {resp.headers.get('location')}); "
                           "update the repository name in the configuration", resp.status, resp.data)
        if resp.status >= 500:
            if write:
                raise WriteUncertain(f"{what}: GitHub answered {resp.status} {resp.message}; "
                                     "it may or may not have been applied")
            return
        detail = json.dumps(resp.data.get("errors")) if isinstance(resp.data, dict) and \
            resp.data.get("errors") else ""
        raise ApiError(f"{what}: GitHub answered {resp.status} {resp.message} {detail}".rstrip(),
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
              upload: tuple[Path, str] | None) -> Response:
        parts = urllib.parse.urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.netloc, timeout=self.timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Accept": MEDIA_TYPE, "X-GitHub-Api-Version": API_VERSION,
                   "Authorization": f"Bearer {self.__token}", "User-Agent": self.user_agent}
        try:
            if upload is not None:
                self._send_file(conn, target, headers, *upload)
            else:
                body = json.dumps(json_body).encode() if json_body is not None else None
                if body is not None:
                    headers["Content-Type"] = "application/json"
                conn.request(method, target, body=body, headers=headers)
            raw = conn.getresponse()
            payload = raw.read()
            resp_headers = {k.lower(): v for k, v in raw.getheaders()}
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
                   path: Path, content_type: str) -> None:
        """Send headers then the file in fixed-size chunks: memory does not grow with the file."""
        with open(path, "rb") as fh:
            size = path.stat().st_size
            conn.putrequest("POST", target, skip_accept_encoding=True)
            for key, value in {**headers, "Content-Type": content_type,
                               "Content-Length": str(size)}.items():
                conn.putheader(key, value)
            conn.endheaders()
            buf = bytearray(self.chunk_size)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                conn.send(view[:n])

    def _url(self, url: str, params: Mapping[str, object] | None = None) -> str:
        full = url if "://" in url else self.api_url + url
        if params:
            full += ("&" if "?" in full else "?") + urllib.parse.urlencode(params)
        return full


def _display(url: str) -> str:
    """The URL without scheme and host, for messages."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
