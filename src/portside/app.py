"""The ASGI application: ``build_app(settings)`` wires services and routes; nothing lives at module level."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from portside.api.hot_reads import HotReads
from portside.api.management import management_mount
from portside.api.nul_guard import NulGuard
from portside.api.search_v1 import search_v1_routes
from portside.api.token import get_token, post_token
from portside.api.unexpected import STORAGE_ERROR_TYPES, on_page_storage_error, on_unexpected_page_error
from portside.api.v2 import dispatch
from portside.config import SETTINGS_ENV, Settings
from portside.notifications.delivery import Deliverer
from portside.observability.endpoints import observability_routes
from portside.observability.forwarded import TrustedProxies
from portside.observability.logs import configure_logging
from portside.observability.metrics import MULTIPROC_ENV, Metrics
from portside.observability.middleware import ObservabilityMiddleware
from portside.registry.services import build_registry
from portside.workers.leader import FileLeadership, Leadership, PostgresLeadership
from portside.workers.process import settle_worker_process
from portside.workers.scheduler import Job, run_every, run_jobs

V2_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def build_app(settings: Settings) -> Starlette:
    """A Portside app for ``settings``; services start in its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        registry = build_registry(settings)
        app.state.registry = registry
        registry.gc.observe_runs(app.state.metrics.record_gc_run)
        if settings.web_ui:
            from portside.api.web import build_web

            app.state.web = build_web(settings, registry)
        proxy = None
        if settings.mirrors:
            # Imported only when used: the pull-through cache's HTTP client costs a worker 7 MiB.
            from portside.proxy import start_proxy

            proxy = start_proxy(app, registry)
        # With mirrors, reads of mirrored repositories must reach the pull-through cache.
        app.state.hot_reads = None if settings.mirrors else HotReads(registry)
        jobs = [Job("upload-expiry", settings.upload_purge_interval_seconds, registry.uploads.expire)]
        if settings.gc_interval_seconds > 0:
            jobs.append(Job("gc", settings.gc_interval_seconds, registry.gc.scheduled))
        if settings.retention_interval_seconds > 0:
            jobs.append(Job("retention", settings.retention_interval_seconds, registry.retention.scheduled))
        # Indexes repositories that predate the search index (migration 0006); cheap when none do.
        jobs.append(Job("search-backfill", 3600, registry.search_index.backfill))
        if settings.web_ui:
            jobs.append(Job("web-session-expiry", 3600, app.state.web.sessions.store.purge_expired))
        if registry.pull_limits is not None:
            jobs.append(Job("pull-counter-purge", 3600, registry.pull_limits.purge))
        if settings.webhooks_enabled:
            metrics = getattr(app.state, "metrics", None)
            deliverer = Deliverer.from_settings(
                registry.notifier.store, settings, metrics.record_webhook_delivery if metrics else None
            )
            jobs.append(Job("webhook-delivery", settings.webhook_poll_seconds, deliverer.run, record_idle=False))
            jobs.append(Job("webhook-log-prune", 3600, deliverer.prune_log))
        leadership: Leadership
        if registry.store.dialect == "postgresql":
            leadership = PostgresLeadership(registry.store.leadership_engine())
        else:
            leadership = FileLeadership(settings.data_dir / "locks" / "background-jobs.lock")
        node = f"{settings.node_name}:{settings.port}/{os.getpid()}"

        async def record(job: str, started: datetime, finished: datetime, outcome: str) -> None:
            await registry.store.record_job_run(job, node, started, finished, outcome)

        settle_worker_process()
        background = asyncio.create_task(run_jobs(jobs, leadership, record))
        audit_flusher = asyncio.create_task(run_every(1.0, registry.audit.flush))
        # Last-pulled times (for retention) are buffered per process and written every few seconds.
        pull_flusher = asyncio.create_task(run_every(5.0, registry.pulls.flush))
        # Pull counts are buffered per process like audit events and written about once a second.
        pull_counter = asyncio.create_task(run_every(1.0, registry.repository_info.flush_pulls))
        event_flusher = asyncio.create_task(run_every(1.0, registry.notifier.flush))
        try:
            yield
        finally:
            for task in (background, audit_flusher, pull_flusher, pull_counter, event_flusher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await registry.audit.flush()
            await registry.pulls.flush()
            await registry.repository_info.flush_pulls()
            await registry.notifier.flush()
            if proxy is not None:
                await proxy.close()
            await registry.close()
            app.state.metrics.process_exited(os.getpid())

    # With mirrors, reads of mirrored repositories go through the pull-through cache first.
    v2 = dispatch
    if settings.mirrors:
        from portside.proxy import proxy_dispatch

        v2 = proxy_dispatch
    routes: list[BaseRoute] = [
        Route("/v2", v2, methods=V2_METHODS),
        Route("/v2/{path:path}", v2, methods=V2_METHODS),
        management_mount(),
    ]
    if settings.docker_search:
        routes += search_v1_routes()
    if settings.auth == "token":
        routes += [Route("/token", get_token, methods=["GET"]), Route("/token", post_token, methods=["POST"])]
    routes += observability_routes(settings.metrics_enabled)
    if settings.web_ui:
        # Imported only when on: the registry API never loads the UI's templates.
        from portside.api.web import web_routes

        # Last, so that /v2, /v1, /token, /api/v1 and /metrics keep their own handlers.
        routes += web_routes()
    # Under `portside serve` the workers share one metrics directory (see observability/metrics.py).
    metrics_dir = os.environ.get(MULTIPROC_ENV)
    metrics = Metrics(Path(metrics_dir) if metrics_dir else None)
    configure_logging(settings.log_level, settings.access_log)
    observability = Middleware(
        ObservabilityMiddleware, metrics=metrics, trusted=TrustedProxies.parse(settings.trusted_proxies)
    )
    registry_api = Middleware(RegistryApiShortcut, registry_api=request_response(v2))
    nul_guard = Middleware(NulGuard)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[observability, nul_guard, registry_api],
        exception_handlers={
            **dict.fromkeys(STORAGE_ERROR_TYPES, on_page_storage_error),
            Exception: on_unexpected_page_error,
        },
    )
    app.state.metrics = metrics
    return app


class RegistryApiShortcut:
    """Sends ``/v2`` requests straight to the registry API: cached hot reads first, then its handler.

    The registry API matches its own paths and turns every error into the spec's body, so the
    framework's exception middleware and route search would only add time to its hot reads.
    """

    def __init__(self, app: ASGIApp, registry_api: ASGIApp) -> None:
        self.app = app
        self.registry_api = registry_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI event."""
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/v2/") or path == "/v2":
                hot_reads: HotReads | None = getattr(scope["app"].state, "hot_reads", None)
                if hot_reads is not None and await hot_reads.answer(scope, send):
                    return
                await self.registry_api(scope, receive, send)
                return
        await self.app(scope, receive, send)


def app_from_environment() -> Starlette:
    """The factory each server worker calls: settings come resolved from `portside serve`."""
    raw = os.environ.get(SETTINGS_ENV)
    settings = Settings.model_validate_json(raw) if raw else Settings()
    return build_app(settings)
