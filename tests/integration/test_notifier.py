"""The notifier in process, on a migrated SQLite database: what producers without a request (the
lifecycle jobs) emit, and what goes into the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from portside.config import Settings
from portside.metadata import migrate
from portside.metadata.store import utcnow
from portside.notifications.events import EventAction, RegistryEvent, RetentionScan
from portside.registry.services import Registry, build_registry


@contextlib.asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Registry]:
    """The registry's services on a migrated database, closed after."""
    await migrate.upgrade(settings.resolved_database_url)
    registry = build_registry(settings)
    try:
        yield registry
    finally:
        await registry.close()


def test_retention_scan_and_pull_events_reach_the_outbox_of_subscribed_endpoints(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(Settings(data_dir=tmp_path, webhook_endpoint_cache_seconds=0)) as registry:
            notifier = registry.notifier
            wanted = await notifier.add_endpoint("acme", "http://127.0.0.1:9/hook", "retention_scan,pull")
            others = await notifier.add_endpoint("acme", "http://127.0.0.1:9/other", "push")
            scan = RetentionScan(policy="keep-last-2", candidates=("sha256:" + "1" * 64,), dry_run=True)
            assert await notifier.retention_scan("acme/app", scan) == 1
            assert await notifier.retention_scan("zeta/app", scan) == 0  # no endpoint in that namespace

            # Pulls are buffered until the flush.
            pull = RegistryEvent(action=EventAction.PULL, repository="acme/app", digest="sha256:" + "2" * 64)
            await notifier.emit_buffered(pull)
            assert [d.action for d in await notifier.deliveries(wanted.endpoint.id)] == ["retention_scan"]
            assert await notifier.flush() == 1

            log = await notifier.deliveries(wanted.endpoint.id)
            assert [(d.action, d.status, d.attempts) for d in log] == [
                ("pull", "pending", 0),
                ("retention_scan", "pending", 0),
            ]
            [event] = json.loads(log[1].payload)["events"]
            assert event["action"] == "retention_scan" and event["target"]["repository"] == "acme/app"
            assert event["retention"] == {
                "policy": "keep-last-2",
                "candidates": ["sha256:" + "1" * 64],
                "removed": [],
                "dryRun": True,
            }
            assert event["actor"] == {"name": "retention"}
            assert await notifier.deliveries(others.endpoint.id) == []

            # The log keeps pending rows; finished ones go after their retention.
            await notifier.store.record_attempt(
                log[0].id, status="delivered", attempts=1, status_code=200, error=None, next_attempt_at=utcnow()
            )
            assert await notifier.store.prune(utcnow() + timedelta(days=1)) == 1
            assert [d.action for d in await notifier.deliveries(wanted.endpoint.id)] == ["retention_scan"]

    asyncio.run(scenario())


def test_an_endpoint_removed_elsewhere_while_cached_here_does_not_break_a_push(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(Settings(data_dir=tmp_path, webhook_endpoint_cache_seconds=3600)) as registry:
            notifier = registry.notifier
            created = await notifier.add_endpoint("acme", "http://127.0.0.1:9/hook", "*")
            push = RegistryEvent(action=EventAction.PUSH, repository="acme/app", digest="sha256:" + "3" * 64)
            assert await notifier.emit(push) == 1  # now cached in this process
            # Another process removes it: this one still has it cached.
            assert await notifier.store.remove_endpoint(created.endpoint.id)
            assert await notifier.emit(push) == 0
            await notifier.emit_buffered(RegistryEvent(action=EventAction.PULL, repository="acme/app"))
            assert await notifier.flush() == 0

    asyncio.run(scenario())
