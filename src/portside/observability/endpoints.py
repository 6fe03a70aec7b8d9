"""``/healthz``, ``/readyz`` and ``/metrics``: thin handlers over the registry's store and storage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portside.observability.metrics import Metrics, StorageUsage
from portside.registry.services import Registry

log = logging.getLogger("portside.health")

# A check that takes longer than this counts as failed: a hung database must not hang probes.
CHECK_TIMEOUT_SECONDS = 5.0

# The key a readiness probe stats: it need not exist, the driver must just be able to answer.
PROBE_KEY = "readyz-probe"


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. Depends on nothing else, so a database outage restarts nothing."""
    return JSONResponse({"status": "ok"})


async def _check(name: str, probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        log.warning("readiness check %s timed out", name)
        return f"failed: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:
        # The detail (host names, paths) goes to the log with the request id, not to the caller.
        log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        return f"failed: {type(exc).__name__}"
    return "ok"


async def readyz(request: Request) -> Response:
    """Readiness: the database answers a trivial query and the blob storage answers a stat."""
    registry: Registry = request.app.state.registry
    database, storage = await asyncio.gather(
        _check("database", registry.store.ping()), _check("storage", registry.storage.stat(PROBE_KEY))
    )
    checks = {"database": database, "storage": storage}
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    """Prometheus exposition of every worker's metrics, with storage figures read now."""
    registry: Registry = request.app.state.registry
    service: Metrics = request.app.state.metrics
    usage: StorageUsage | None
    try:
        blobs, blob_bytes = await registry.store.blob_totals()
        usage = StorageUsage(blobs, blob_bytes, await registry.store.count_uploads())
    except Exception as exc:
        # The request counters are still worth a scrape while the database is down.
        log.warning("storage figures unavailable for /metrics: %s", exc)
        usage = None
    body, content_type = service.render(usage)
    return Response(body, media_type=content_type)


def observability_routes(metrics_enabled: bool) -> list[BaseRoute]:
    """The probe routes, and ``/metrics`` unless switched off."""
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
    ]
    if metrics_enabled:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    return routes
