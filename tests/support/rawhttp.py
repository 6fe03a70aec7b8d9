"""Raw HTTP/1.1 over a socket, for requests an HTTP library would normalise away."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class RawResponse:
    """Status, headers (lower-case names, repeated ones kept) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header."""
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None


def raw_request(host: str, port: int, head: bytes, body: bytes = b"", timeout: float = 10.0) -> RawResponse:
    """Send ``head`` (request line and headers, CRLF-terminated, without the blank line) and ``body``."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header_block, _, rest = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [(k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)]
    return RawResponse(status, headers, rest)
