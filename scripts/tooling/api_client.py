"""A client of the upload API, the way an app uses it: nothing but HTTP.

    request an upload -> multipart POST the file to S3 -> poll GET /images/{id}

Used by ``scripts/upload.py`` (the CLI) and the end-to-end tests. Standard library and urllib3
only; works against the local stack (trusting its CA) and a real deployment.
"""

from __future__ import annotations

import http.client
import json
import mimetypes
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

# Types Python's mimetypes may not know on every platform.
EXTRA_TYPES = {
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".webp": "image/webp",
    ".jpg": "image/jpeg",
    ".tif": "image/tiff",
}
FINAL = {"READY", "FAILED"}
CHUNK = 64 * 1024


def content_type_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return EXTRA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any  # decoded JSON, or text when it is not JSON

    def json(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise ApiError(self.status, self.body)
        return self.body


class UploadClient:
    def __init__(
        self,
        api_url: str,
        api_key: str,
        ca_bundle: str | None = None,
        *,
        user_agent: str | None = None,
    ) -> None:
        """``user_agent``: sent with every request (the API's and the upload's), e.g. to tell
        a workload's requests apart in the embedded stack's usage counts (``app/<id>``)."""
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.user_agent = user_agent
        self.ssl_context = ssl.create_default_context(cafile=ca_bundle)
        self._http = urllib3.PoolManager(
            ssl_context=self.ssl_context,
            retries=urllib3.Retry(total=3, connect=3, read=0, status=0, backoff_factor=0.2),
            timeout=urllib3.Timeout(connect=5, read=30),
        )

    # -- the API ----------------------------------------------------------------------------

    def call(
        self, method: str, path: str, body: Any = None, *, api_key: str | None = None, **kw: Any
    ) -> Response:
        headers = {"X-Api-Key": self.api_key if api_key is None else api_key}
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        if body is not None:
            headers["Content-Type"] = "application/json"
        headers |= kw.pop("headers", {})
        data = body if isinstance(body, bytes | str) or body is None else json.dumps(body)
        response = self._http.request(
            method, f"{self.api_url}{path}", body=data, headers=headers, **kw
        )
        text = response.data.decode(errors="replace")
        try:
            payload: Any = json.loads(text) if text else None
        except ValueError:
            payload = text
        return Response(
            response.status, {k.lower(): v for k, v in response.headers.items()}, payload
        )

    def request_upload(self, filename: str, content_type: str, size: int) -> dict[str, Any]:
        response = self.call(
            "POST",
            "/uploads",
            {"filename": filename, "content_type": content_type, "size": size},
        )
        if response.status != 201:
            raise ApiError(response.status, response.body)
        return response.json()

    def image(self, image_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/images/{image_id}")
        if response.status != 200:
            raise ApiError(response.status, response.body)
        return response.json()

    def wait(self, image_id: str, timeout: float = 120, interval: float = 0.25) -> dict[str, Any]:
        """Poll until the image is READY or FAILED (TimeoutError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            image = self.image(image_id)
            if image["status"] in FINAL:
                return image
            if time.monotonic() > deadline:
                raise TimeoutError(f"{image_id} still {image['status']} after {timeout:.0f} s")
            time.sleep(interval)

    def fetch(self, url: str) -> tuple[int, bytes, str]:
        """GET a presigned URL: (status, body, content type)."""
        response = self._http.request("GET", url, headers={})
        return response.status, response.data, response.headers.get("Content-Type", "")

    # -- S3 ---------------------------------------------------------------------------------

    def post_file(
        self,
        upload: dict[str, Any],
        data: bytes,
        filename: str,
        *,
        content_type: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[int, str]:
        """The browser-style multipart POST to S3 with the presigned fields; the file last.

        Sent in chunks with a Content-Length (S3 refuses chunked POSTs), reporting progress.
        Returns S3's status and body (204 and empty on success).
        """
        boundary = uuid.uuid4().hex
        head = b"".join(
            _part(boundary, f'name="{name}"', str(value).encode())
            for name, value in upload["fields"].items()
        )
        file_type = content_type or upload["fields"].get("Content-Type", "")
        head += (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{_quote(filename)}"\r\n'
            f"Content-Type: {file_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        url = urlsplit(upload["url"])
        connection_class = (
            http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        )
        kwargs: dict[str, Any] = {"timeout": 60}
        if url.scheme == "https":
            kwargs["context"] = self.ssl_context
        connection = connection_class(url.netloc, **kwargs)
        try:
            connection.putrequest("POST", url.path or "/")
            connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            if self.user_agent:
                connection.putheader("User-Agent", self.user_agent)
            connection.putheader("Content-Length", str(len(head) + len(data) + len(tail)))
            connection.endheaders()
            connection.send(head)
            for start in range(0, len(data), CHUNK):
                chunk = data[start : start + CHUNK]
                connection.send(chunk)
                if progress:
                    progress(len(chunk))
            connection.send(tail)
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()


def _part(boundary: str, disposition: str, value: bytes) -> bytes:
    return (
        f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode()
        + value
        + b"\r\n"
    )


def _quote(name: str) -> str:
    return name.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")
