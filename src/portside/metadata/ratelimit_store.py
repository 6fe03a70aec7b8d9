"""Fixed-window pull counters, shared by every worker and node through the database."""

from __future__ import annotations

from sqlalchemy import delete, select

from portside.metadata.store import MetadataStore
from portside.metadata.tables import pull_counters


class PullCounterStore:
    """One row per (subject, window); a pull is one atomic upsert-increment."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    async def increment(self, subject: str, window_start: int) -> int:
        """Add one pull to ``subject``'s counter of the window starting at ``window_start``; the new count.

        One statement (INSERT ... ON CONFLICT DO UPDATE ... RETURNING): concurrent pulls on any
        worker or node each see a distinct count, so no more than the limit get through.
        """
        statement = (
            self.store.insert(pull_counters)
            .values(subject=subject, window_start=window_start, pulls=1)
            .on_conflict_do_update(
                index_elements=[pull_counters.c.subject, pull_counters.c.window_start],
                set_={"pulls": pull_counters.c.pulls + 1},
            )
            .returning(pull_counters.c.pulls)
        )
        async with self.store.writing() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def current(self, subject: str, window_start: int) -> int:
        """Pulls counted so far for ``subject`` in the window (0 if none)."""
        query = select(pull_counters.c.pulls).where(
            pull_counters.c.subject == subject, pull_counters.c.window_start == window_start
        )
        async with self.store.reading() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return 0 if value is None else int(value)

    async def purge_before(self, window_start: int) -> int:
        """Delete counters of windows that started before ``window_start``; how many went."""
        async with self.store.writing() as conn:
            result = await conn.execute(delete(pull_counters).where(pull_counters.c.window_start < window_start))
        return int(result.rowcount or 0)
