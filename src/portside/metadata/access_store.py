"""Access tokens, grants and repository settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from portside.metadata.account_errors import NotFound
from portside.metadata.records import (
    GrantRecord,
    RepositoryRecord,
    TokenRecord,
)
from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import (
    access_tokens,
    grants,
    organizations,
    repositories,
    robots,
    team_members,
    teams,
    users,
)


def _optional_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


class AccessStore:
    """Tokens, grants and repository settings."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # Tokens

    async def create_token(
        self,
        *,
        user_id: int | None,
        robot_id: int | None,
        name: str,
        secret_hash: str,
        max_role: str,
        expires_at: datetime | None,
    ) -> int:
        """Store a token's hash; returns its id."""
        async with self._store.writing() as conn:
            result = await conn.execute(
                access_tokens.insert().values(
                    user_id=user_id,
                    robot_id=robot_id,
                    name=name,
                    secret_hash=secret_hash,
                    max_role=max_role,
                    expires_at=expires_at,
                    created_at=utcnow(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def _token_query(self) -> Any:
        owner = func.coalesce(users.c.username, robots.c.namespace + "+" + robots.c.name)
        return select(
            access_tokens,
            owner.label("owner"),
            users.c.username.label("username"),
        ).select_from(
            access_tokens.outerjoin(users, users.c.id == access_tokens.c.user_id).outerjoin(
                robots, robots.c.id == access_tokens.c.robot_id
            )
        )

    @staticmethod
    def _token(row: Any) -> TokenRecord:
        return TokenRecord(
            id=row.id,
            name=row.name,
            owner=row.owner,
            owner_kind="user" if row.user_id is not None else "robot",
            max_role=row.max_role,
            expires_at=_optional_time(row.expires_at),
            created_at=as_utc(row.created_at),
            last_used_at=_optional_time(row.last_used_at),
        )

    async def find_token(self, secret_hash: str) -> TokenRecord | None:
        """The token with this secret hash, and note that it was used."""
        async with self._store.reading() as conn:
            row = (await conn.execute(self._token_query().where(access_tokens.c.secret_hash == secret_hash))).first()
        if row is None:
            return None
        return self._token(row)

    async def touch_token(self, token_id: int) -> None:
        """Record when a token was last used."""
        async with self._store.writing() as conn:
            await conn.execute(
                update(access_tokens).where(access_tokens.c.id == token_id).values(last_used_at=utcnow())
            )

    async def list_tokens(self, owner_kind: str, owner_id: int) -> list[TokenRecord]:
        """A user's or robot's tokens."""
        column = access_tokens.c.user_id if owner_kind == "user" else access_tokens.c.robot_id
        async with self._store.reading() as conn:
            rows = (
                await conn.execute(self._token_query().where(column == owner_id).order_by(access_tokens.c.id))
            ).all()
        return [self._token(row) for row in rows]

    async def delete_token(self, owner_kind: str, owner_id: int, token_id: int) -> None:
        """Revoke one of an owner's tokens."""
        column = access_tokens.c.user_id if owner_kind == "user" else access_tokens.c.robot_id
        async with self._store.writing() as conn:
            result = await conn.execute(delete(access_tokens).where(access_tokens.c.id == token_id, column == owner_id))
            if not result.rowcount:
                raise NotFound(f"no token {token_id}")

    # Grants

    async def set_grant(self, subject_kind: str, subject_id: int, target_kind: str, target: str, role: str) -> None:
        """Grant (or change) a role."""
        async with self._store.writing() as conn:
            statement = self._store.insert(grants).values(
                subject_kind=subject_kind, subject_id=subject_id, target_kind=target_kind, target=target, role=role
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[grants.c.subject_kind, grants.c.subject_id, grants.c.target_kind, grants.c.target],
                    set_={"role": role},
                )
            )

    async def remove_grant(self, subject_kind: str, subject_id: int, target_kind: str, target: str) -> None:
        """Take a grant away."""
        async with self._store.writing() as conn:
            result = await conn.execute(
                delete(grants).where(
                    grants.c.subject_kind == subject_kind,
                    grants.c.subject_id == subject_id,
                    grants.c.target_kind == target_kind,
                    grants.c.target == target,
                )
            )
            if not result.rowcount:
                raise NotFound("no such grant")

    async def grants_on(self, target_kind: str, target: str) -> list[GrantRecord]:
        """Every grant on a repository or namespace, with readable subject names."""
        subject = func.coalesce(
            users.c.username, organizations.c.name + "/" + teams.c.name, robots.c.namespace + "+" + robots.c.name
        )
        query = (
            select(grants, subject.label("subject"))
            .select_from(
                grants.outerjoin(users, (grants.c.subject_kind == "user") & (users.c.id == grants.c.subject_id))
                .outerjoin(teams, (grants.c.subject_kind == "team") & (teams.c.id == grants.c.subject_id))
                .outerjoin(organizations, organizations.c.id == teams.c.organization_id)
                .outerjoin(robots, (grants.c.subject_kind == "robot") & (robots.c.id == grants.c.subject_id))
            )
            .where(grants.c.target_kind == target_kind, grants.c.target == target)
            .order_by(grants.c.id)
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [GrantRecord(r.id, r.subject_kind, r.subject or "?", r.target_kind, r.target, r.role) for r in rows]

    async def grants_for(self, subject_kind: str, subject_id: int) -> list[tuple[str, str, str]]:
        """(target kind, target, role) of a user (directly and through teams) or a robot."""
        condition = (grants.c.subject_kind == subject_kind) & (grants.c.subject_id == subject_id)
        if subject_kind == "user":
            user_teams = select(team_members.c.team_id).where(team_members.c.user_id == subject_id)
            condition = condition | ((grants.c.subject_kind == "team") & grants.c.subject_id.in_(user_teams))
        async with self._store.reading() as conn:
            rows = (
                await conn.execute(select(grants.c.target_kind, grants.c.target, grants.c.role).where(condition))
            ).all()
        return [(row.target_kind, row.target, row.role) for row in rows]

    # Repositories

    async def get_repository(self, name: str) -> RepositoryRecord | None:
        """A repository's settings."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(repositories).where(repositories.c.name == name))).first()
        if row is None:
            return None
        return RepositoryRecord(row.name, row.visibility == "public", row.description, as_utc(row.created_at))

    async def repositories_named(self, names: list[str]) -> list[RepositoryRecord]:
        """The settings of the named repositories that exist, in the order of ``names``."""
        if not names:
            return []
        async with self._store.reading() as conn:
            rows = (await conn.execute(select(repositories).where(repositories.c.name.in_(names)))).all()
        found = {
            row.name: RepositoryRecord(row.name, row.visibility == "public", row.description, as_utc(row.created_at))
            for row in rows
        }
        return [found[name] for name in names if name in found]

    async def update_repository(self, name: str, *, public: bool | None, description: str | None) -> RepositoryRecord:
        """Change a repository's visibility or description."""
        values: dict[str, Any] = {}
        if public is not None:
            values["visibility"] = "public" if public else "private"
        if description is not None:
            values["description"] = description
        async with self._store.writing() as conn:
            if values:
                result = await conn.execute(update(repositories).where(repositories.c.name == name).values(**values))
                if not result.rowcount:
                    raise NotFound(f"no repository {name!r}")
        record = await self.get_repository(name)
        if record is None:
            raise NotFound(f"no repository {name!r}")
        return record
