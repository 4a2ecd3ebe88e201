"""A client for a running daemon's API, for the CLI: JSON calls and server-sent event streams.

It uses the standard library's `http.client` rather than httpx: a CLI command pays for its imports
on every run, and httpx (which pulls in trio, anyio and h2 here) costs ~0.35 s before the first
byte, more than the whole budget of ``p2pc show``. The API is plain HTTP/1.1 on localhost, so
nothing is lost.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import quote, urlencode

from p2pcomments.api.actions import ACTIONS_BY_NAME, path_parameters
from p2pcomments.api.address_file import ApiAddress
from p2pcomments.api.bundle import BUNDLE_MEDIA_TYPE
from p2pcomments.errors import P2PCommentsError

__all__ = [
    "ByteSink",
    "DaemonClient",
    "DaemonRefused",
    "DaemonUnreachable",
    "RemoteError",
    "ServerEvent",
]

_CALL_TIMEOUT: Final = 60.0
_DOWNLOAD_CHUNK: Final = 1 << 20


class DaemonUnreachable(P2PCommentsError, ConnectionError):
    """api.json names a daemon, but it does not answer (or stopped answering)."""

    http_status = 503
    default_reason = "daemon-unreachable"


class DaemonRefused(DaemonUnreachable):
    """Nothing listens at the address api.json names: the request was not sent at all."""


class RemoteError(P2PCommentsError):
    """The daemon answered with an error; ``status`` is its HTTP status."""

    def __init__(self, message: str, *, reason: str, status: int) -> None:
        super().__init__(message, reason=reason)
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerEvent:
    name: str
    data: Any


class ByteSink(Protocol):
    """Where `DaemonClient.download` writes: a binary file, or anything with its ``write``."""

    def write(self, data: bytes, /) -> object: ...


class DaemonClient:
    def __init__(self, address: ApiAddress) -> None:
        self.address = address

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.address.host, self.address.port, timeout=timeout)

    def _unreachable(self, error: OSError) -> DaemonUnreachable:
        kind = DaemonRefused if isinstance(error, ConnectionRefusedError) else DaemonUnreachable
        return kind(
            f"the daemon at {self.address.url} (pid {self.address.pid}) is not answering: "
            f"{error.strerror or error or 'timed out'}"
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        auth: bool = False,
        timeout: float | None = _CALL_TIMEOUT,
    ) -> http.client.HTTPResponse:
        # One request per connection: the server closes it after answering, so nothing lingers
        # in the daemon when it shuts down.
        headers = {"Accept": "application/json", "Connection": "close"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if auth:
            headers["Authorization"] = f"Bearer {self.address.token}"
        connection = self._connection(timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            if isinstance(error, OSError):
                raise self._unreachable(error) from None
            raise DaemonUnreachable(f"the daemon at {self.address.url} failed: {error}") from None
        if response.status >= 400:
            raise _remote_error(response)
        return response

    def call(self, name: str, /, **params: Any) -> Any:
        """Perform the action ``name`` (see `p2pcomments.api.actions`); JSON or bundle bytes."""
        action = ACTIONS_BY_NAME[name]
        response = self._request(name, params)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise DaemonUnreachable(f"the daemon at {self.address.url} failed: {error}") from None
        if action.produces in ("bundle", "xml"):
            return data
        return json.loads(data)

    def download(self, name: str, sink: ByteSink, /, **params: Any) -> None:
        """Perform the action ``name`` and write its body to ``sink`` as it arrives (an export
        larger than memory). A body cut short (the daemon failed midway) is `DaemonUnreachable`:
        what was written is not all of it."""
        response = self._request(name, params)
        try:
            while chunk := response.read(_DOWNLOAD_CHUNK):
                sink.write(chunk)
        except (OSError, http.client.HTTPException) as error:
            raise DaemonUnreachable(
                f"the daemon at {self.address.url} failed midway: {error}"
            ) from None
        finally:
            response.close()

    def _request(self, name: str, params: dict[str, Any]) -> http.client.HTTPResponse:
        action = ACTIONS_BY_NAME[name]
        path = action.path
        for parameter in path_parameters(action.path):
            path = path.replace("{" + parameter + "}", quote(str(params.pop(parameter)), safe=""))
        query: list[tuple[str, str]] = []
        for field in action.query:
            value = params.get(field.name)
            if field.repeated:
                query += [(field.name, str(item)) for item in value or ()]
            elif value is not None:
                query.append((field.name, str(value)))
        if query:
            path += "?" + urlencode(query)
        body: bytes | None = None
        content_type: str | None = None
        if action.consumes == "json":
            document = {f.name: params[f.name] for f in action.fields if f.name in params}
            # Not \u-escaped: a body at the size limit in any script stays under the API's
            # limit for a JSON request (an escape takes up to 12 bytes for 4 of UTF-8).
            body = json.dumps(document, ensure_ascii=False).encode("utf-8")
            content_type = "application/json"
        elif action.consumes == "bundle":
            body = params["bundle"]
            content_type = BUNDLE_MEDIA_TYPE
        elif action.consumes == "export":
            body = params["export"]
            content_type = "application/xml"
        return self._send(
            action.method, path, body=body, content_type=content_type, auth=action.writes
        )

    def events(self, path: str) -> Iterator[ServerEvent]:
        """Server-sent events from ``path`` until the daemon ends the stream.

        The first item is ``ServerEvent(name="ready")``: it is yielded once the stream is open, so
        a caller knows that no later change will be missed.
        """
        response = self._send("GET", path, timeout=None)
        yield ServerEvent(name="ready", data=None)
        name = "message"
        data: list[str] = []
        try:
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        yield ServerEvent(name=name, data=json.loads("\n".join(data)))
                    name, data = "message", []
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "event":
                        name = value
                    elif field == "data":
                        data.append(value)
        except (OSError, http.client.HTTPException) as error:
            raise DaemonUnreachable(f"lost the daemon at {self.address.url}: {error}") from None
        finally:
            response.close()


def _remote_error(response: http.client.HTTPResponse) -> RemoteError:
    try:
        document = json.loads(response.read())
        error = document["error"]
        return RemoteError(str(error["message"]), reason=str(error["code"]), status=response.status)
    except (ValueError, KeyError, TypeError, OSError):
        return RemoteError(
            f"the daemon answered {response.status} {response.reason}",
            reason="http-error",
            status=response.status,
        )
