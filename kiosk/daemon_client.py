"""Talking to the daemon over its Unix socket: what the shell and kioskctl use.

The daemon has no TCP port, so ordinary HTTP clients cannot reach it; this
module speaks HTTP/1.1 over the socket and turns error replies into
``DaemonError`` carrying the daemon's code and (translated) message.
"""

from __future__ import annotations

import http.client
import json
import mimetypes
import secrets
import socket
from pathlib import Path
from urllib.parse import quote
from typing import Any


class DaemonError(Exception):
    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body or {}


class DaemonUnreachable(DaemonError):
    def __init__(self, path: str, reason: str):
        super().__init__(0, "unreachable", f"{path}: {reason}")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class DaemonClient:
    """One keep-alive connection to the daemon (not thread-safe: one per thread)."""

    def __init__(self, socket_path: str | Path, *, timeout: float = 30.0,
                 language: str | None = None):
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self.language = language
        self._connection: _UnixConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(self, method: str, path: str, body: bytes | None,
              headers: dict[str, str]) -> tuple[int, str, bytes]:
        for attempt in (1, 2):  # a kept-alive connection may have been closed by the server
            if self._connection is None:
                self._connection = _UnixConnection(self.socket_path, self.timeout)
            try:
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                return response.status, response.getheader("Content-Type", ""), response.read()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 2 or isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
                    raise DaemonUnreachable(self.socket_path, str(exc)) from None
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, *, json_body: Any = None, raw: bytes | None = None,
                content_type: str | None = None, headers: dict[str, str] | None = None) -> Any:
        sent = dict(headers or {})
        if self.language:
            sent["Accept-Language"] = self.language
        body = raw
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        elif content_type:
            sent["Content-Type"] = content_type
        status, kind, data = self._send(method, "/api/v1" + path, body, sent)
        if not kind.startswith("application/json"):
            if status >= 400:
                raise DaemonError(status, "bad_reply", data[:200].decode(errors="replace"))
            return data
        payload = json.loads(data or b"null")
        if status >= 400:
            payload = payload if isinstance(payload, dict) else {}
            raise DaemonError(status, str(payload.get("error", "error")),
                              str(payload.get("message", "")), payload)
        return payload

    # -- the API -----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/status")

    def start_session(self) -> dict[str, Any]:
        return self.request("POST", "/session/start")["session"]

    def activity(self) -> str:
        return self.request("POST", "/session/activity")["state"]

    def end_session(self, reason: str = "user") -> dict[str, Any]:
        return self.request("POST", "/session/end", json_body={"reason": reason})

    def open_url(self, url: str, *, geometry: list[int] | None = None,
                 language: str | None = None, slot: str = "portal") -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "slot": slot}
        if geometry is not None:
            body["geometry"] = geometry
        if language is not None:
            body["language"] = language
        return self.request("POST", "/browser", json_body=body)

    def report_location(self, url: str) -> dict[str, Any]:
        return self.request("POST", "/browser/location", json_body={"url": url})

    def documents(self) -> list[dict[str, Any]]:
        return self.request("GET", "/documents")["documents"]

    def document_page(self, folder: str, name: str, page: int = 1) -> bytes:
        return self.request("GET", f"/documents/{folder}/{quote(name, safe='')}/page/{page}.png")

    def print_document(self, folder: str, name: str, copies: int = 1) -> dict[str, Any]:
        return self.request("POST", f"/documents/{folder}/{quote(name, safe='')}/print",
                            json_body={"copies": copies})

    def print_guide(self, guide_id: str, language: str) -> dict[str, Any]:
        return self.request("POST", f"/guides/{quote(guide_id, safe='')}/print",
                            json_body={"language": language})

    def close_browser(self) -> list[int]:
        return self.request("POST", "/browser/close")["stopped"]

    def print_file(self, path: str | Path, copies: int = 1) -> dict[str, Any]:
        path = Path(path)
        boundary = secrets.token_hex(16)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        body = b"".join([
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"copies\"\r\n\r\n"
            f"{copies}\r\n".encode(),
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"document\"\r\nContent-Type: {kind}\r\n\r\n".encode(),
            path.read_bytes(), f"\r\n--{boundary}--\r\n".encode()])
        return self.request("POST", "/print", raw=body,
                            content_type=f"multipart/form-data; boundary={boundary}")["job"]

    def print_job(self, job_id: int) -> dict[str, Any]:
        return self.request("GET", f"/print/{job_id}")["job"]

    def scan(self, resolution: int = 150, mode: str = "color", source: str = "flatbed",
             append_to: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"resolution": resolution, "mode": mode, "source": source}
        if append_to:
            body["append_to"] = append_to
        return self.request("POST", "/scan", json_body=body)["scan"]

    def scan_pdf(self, scan_id: str) -> bytes:
        return self.request("GET", f"/scan/{scan_id}.pdf")

    def share(self, scan_id: str) -> dict[str, Any]:
        return self.request("POST", "/share", json_body={"scan_id": scan_id})

    def agent_reset(self, token: str) -> dict[str, Any]:
        return self.request("POST", "/agent/reset", headers={"Authorization": f"Bearer {token}"})

    # -- help and statistics: never an error a resident could see ------------------------

    def _tolerant(self, path: str, body: dict[str, Any]) -> Any:
        """Statistics must never stop a resident: a daemon without the route (404, an older
        one) answers None; other errors still raise (the shell silences them too)."""
        try:
            return self.request("POST", path, json_body=body)
        except DaemonError as error:
            if error.status in (404, 405):
                return None
            raise

    def ask_help(self, asked: bool = True) -> dict[str, Any] | None:
        """« Besoin d'aide »: an agent is asked for (True) or the request cancelled (False)."""
        return self._tolerant("/help", {"asked": bool(asked)})

    def usage(self, kind: str, value: str) -> Any:
        """What the resident used, for the anonymous records: fixed kinds and ids only
        (portal_opened, guide_started, guide_finished, language, text_size, contrast)."""
        return self._tolerant("/session/usage", {"kind": kind, "value": value})

    def feedback(self, answer: str) -> Any:
        """The end screen's question, for the session that just ended: yes, partly or no."""
        return self._tolerant("/session/feedback", {"answer": answer})
