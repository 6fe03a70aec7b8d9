"""The serving process: Granian and its worker processes, for settings `portside serve` resolved.

`portside serve` resolves the settings, prepares the data directory and brings the database up
to date, then replaces itself with this module (``os.execv``, so the process id stays). Granian
forks its workers from this process, and a forked worker starts with everything its parent had
loaded: here that is Granian, the settings and the TLS helper, where the command line had also
loaded Typer, Alembic and every subcommand's modules. Measured (docs/performance.md): the serving
process 49 MiB instead of 114, an idle worker 94 MiB instead of 103-105, and each worker's peak
under the benchmark's pulls 10-14 MiB lower.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import sys

from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.http import HTTP1Settings
from granian.server import Server

from portside.config import SETTINGS_ENV, Settings
from portside.tls import TLSKeyError, server_key

# The worker factory Granian loads in each worker (the app's modules are imported only there).
APP_FACTORY = "portside.app:app_from_environment"
# The most an HTTP/1 connection reads from its socket at once, which is the largest body chunk the
# app receives (Granian's default is 408 KiB). Each chunk costs the upload's hashing and writing
# threads a round trip for the GIL, so fewer, larger chunks push large blobs faster: alternating
# 10 rounds, 7-15% more MiB/s for monolithic pushes and 0-4% for 8 MiB chunks, pulls unchanged.
# 2 and 4 MiB were no better (docs/performance.md).
HTTP1_BUFFER_BYTES = 1 << 20


def listen_problem(host: str, port: int) -> OSError | None:
    """Why nothing else may listen on ``host:port`` now (the port taken, say), or ``None`` if it is free.

    Granian's workers each listen with ``SO_REUSEPORT``, so a second Portside on a port one already
    serves would start without a word and take half of its connections, whatever its own settings
    (another authentication mode, another data directory). A plain bind, which any listener on the
    port refuses, finds that out first; ``SO_REUSEADDR`` lets it pass the closed connections of a
    server that just stopped.
    """
    if port == 0:
        return None
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        return exc
    return None


def serve(settings: Settings) -> int:
    """Serve the registry API until stopped; the exit status (2 if the address is taken, or the TLS key
    or certificate is unusable)."""
    problem = listen_problem(settings.host, settings.port)
    if problem is not None:
        print(
            f"portside: cannot listen on {settings.host}:{settings.port}: {problem.strerror or problem}"
            " (is another Portside, or another program, serving it?); stop it or choose another port"
            " (--port, PORTSIDE_PORT)",
            file=sys.stderr,
        )
        return 2
    key_password = settings.tls_key_password.get_secret_value() if settings.tls_key_password else None
    with contextlib.ExitStack() as cleanup:
        try:
            key_file = cleanup.enter_context(server_key(settings.tls_key_file, key_password, settings.data_dir / "run"))
            server = Server(
                APP_FACTORY,
                address=settings.host,
                port=settings.port,
                interface=Interfaces.ASGI,
                workers=settings.workers,
                factory=True,
                log_level=settings.log_level,  # type: ignore[arg-type]
                # auto: HTTP/1.1, and HTTP/2 where TLS's ALPN negotiates it (or by prior knowledge).
                http=HTTPModes.auto,
                http1_settings=HTTP1Settings(max_buffer_size=HTTP1_BUFFER_BYTES),
                ssl_cert=settings.tls_cert_file,
                ssl_key=key_file,
                ssl_protocol_min=SSLProtocols.tls12,
            )
        except (OSError, ssl.SSLError, TLSKeyError) as exc:
            print(f"portside: cannot use the TLS certificate or key: {exc}", file=sys.stderr)
            return 2
        scheme = "https" if settings.tls_cert_file is not None else "http"
        address = f"{scheme}://{settings.host}:{settings.port}"
        print(f"Portside serving {address} with data in {settings.data_dir}", flush=True)
        server.serve()
    return 0


def main() -> None:
    """Entry point of ``python -m portside.serving``: the settings come from `portside serve`."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        print(f"portside: {SETTINGS_ENV} is not set; start the server with `portside serve`", file=sys.stderr)
        sys.exit(2)
    sys.exit(serve(Settings.model_validate_json(raw)))


if __name__ == "__main__":
    main()
