"""Users, organizations, teams and robots."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from portside.metadata.account_errors import Conflict, NotFound
from portside.metadata.engines import Writer
from portside.metadata.records import (
    MemberRecord,
    OrganizationRecord,
    RobotRecord,
    TeamRecord,
    UserRecord,
)
from portside.metadata.store import MetadataStore, Reader, as_utc, utcnow
from portside.metadata.tables import (
    access_tokens,
    grants,
    organization_members,
    organizations,
    robots,
    team_members,
    teams,
    users,
)


def _user(row: Any) -> UserRecord:
    return UserRecord(row.id, row.username, row.password_hash, row.email, bool(row.is_admin), as_utc(row.created_at))


def _robot(row: Any) -> RobotRecord:
    return RobotRecord(row.id, row.namespace, row.name, row.description, as_utc(row.created_at))


class PeopleStore:
    """Users, organizations, their members and teams, and robots."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # Users

    async def _namespace_taken(self, conn: Reader, name: str) -> bool:
        user = await conn.execute(select(users.c.id).where(users.c.username == name))
        org = await conn.execute(select(organizations.c.id).where(organizations.c.name == name))
        return user.first() is not None or org.first() is not None

    async def create_user(
        self, username: str, password_hash: str | None, email: str | None, is_admin: bool
    ) -> UserRecord:
        """A new user; ``Conflict`` if a user or organization has the name."""
        async with self._store.writing() as conn:
            if await self._namespace_taken(conn, username):
                raise Conflict(f"the name {username!r} is taken")
            await conn.execute(
                users.insert().values(
                    username=username, password_hash=password_hash, email=email, is_admin=is_admin, created_at=utcnow()
                )
            )
            row = (await conn.execute(select(users).where(users.c.username == username))).one()
        return _user(row)

    async def get_user(self, username: str) -> UserRecord | None:
        """A user by name."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        return None if row is None else _user(row)

    async def list_users(self) -> list[UserRecord]:
        """Every user, by name."""
        async with self._store.reading() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_user(row) for row in rows]

    async def count_users(self) -> int:
        """How many users there are."""
        async with self._store.reading() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())

    async def update_user(
        self, username: str, *, password_hash: str | None = None, is_admin: bool | None = None, email: str | None = None
    ) -> UserRecord:
        """Change a user's password hash, admin flag or email."""
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if is_admin is not None:
            values["is_admin"] = is_admin
        if email is not None:
            values["email"] = email
        async with self._store.writing() as conn:
            if values:
                result = await conn.execute(update(users).where(users.c.username == username).values(**values))
                if not result.rowcount:
                    raise NotFound(f"no user {username!r}")
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        if row is None:
            raise NotFound(f"no user {username!r}")
        return _user(row)

    async def delete_user(self, username: str) -> None:
        """Remove a user with their tokens, memberships and grants, and the robots and grants of their namespace.

        As for an organization: nothing granted in the namespace outlives it, so a later account of
        the same name inherits no robot and no grant.
        """
        async with self._store.writing() as conn:
            row = (await conn.execute(select(users.c.id).where(users.c.username == username))).first()
            if row is None:
                raise NotFound(f"no user {username!r}")
            await self._delete_robots_of(conn, username)
            await conn.execute(delete(grants).where(grants.c.target_kind == "namespace", grants.c.target == username))
            await conn.execute(delete(grants).where(grants.c.subject_kind == "user", grants.c.subject_id == row.id))
            await conn.execute(delete(access_tokens).where(access_tokens.c.user_id == row.id))
            await conn.execute(delete(team_members).where(team_members.c.user_id == row.id))
            await conn.execute(delete(organization_members).where(organization_members.c.user_id == row.id))
            await conn.execute(delete(users).where(users.c.id == row.id))

    # Organizations

    async def create_organization(self, name: str, owner: str) -> OrganizationRecord:
        """A new organization owned by ``owner``."""
        async with self._store.writing() as conn:
            if await self._namespace_taken(conn, name):
                raise Conflict(f"the name {name!r} is taken")
            owner_row = (await conn.execute(select(users.c.id).where(users.c.username == owner))).first()
            if owner_row is None:
                raise NotFound(f"no user {owner!r}")
            await conn.execute(organizations.insert().values(name=name, created_at=utcnow()))
            row = (await conn.execute(select(organizations).where(organizations.c.name == name))).one()
            await conn.execute(
                organization_members.insert().values(organization_id=row.id, user_id=owner_row.id, is_owner=True)
            )
        return OrganizationRecord(row.id, row.name, as_utc(row.created_at))

    async def get_organization(self, name: str) -> OrganizationRecord | None:
        """An organization by name."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(organizations).where(organizations.c.name == name))).first()
        return None if row is None else OrganizationRecord(row.id, row.name, as_utc(row.created_at))

    async def list_organizations(self) -> list[OrganizationRecord]:
        """Every organization, by name."""
        async with self._store.reading() as conn:
            rows = (await conn.execute(select(organizations).order_by(organizations.c.name))).all()
        return [OrganizationRecord(row.id, row.name, as_utc(row.created_at)) for row in rows]

    async def delete_organization(self, name: str) -> None:
        """Remove an organization with its teams, robots, memberships and grants on its namespace."""
        async with self._store.writing() as conn:
            org_id = await self._organization_id(conn, name)
            team_ids = list((await conn.execute(select(teams.c.id).where(teams.c.organization_id == org_id))).scalars())
            if team_ids:
                await conn.execute(
                    delete(grants).where(grants.c.subject_kind == "team", grants.c.subject_id.in_(team_ids))
                )
                await conn.execute(delete(team_members).where(team_members.c.team_id.in_(team_ids)))
                await conn.execute(delete(teams).where(teams.c.id.in_(team_ids)))
            await self._delete_robots_of(conn, name)
            await conn.execute(delete(grants).where(grants.c.target_kind == "namespace", grants.c.target == name))
            await conn.execute(delete(organization_members).where(organization_members.c.organization_id == org_id))
            await conn.execute(delete(organizations).where(organizations.c.id == org_id))

    async def _organization_id(self, conn: Reader, name: str) -> int:
        # A name holding a NUL names nothing (and PostgreSQL would refuse it in the query).
        query = select(organizations.c.id).where(organizations.c.name == name)
        row = None if "\x00" in name else (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"no organization {name!r}")
        return int(row.id)

    async def _user_id(self, conn: Reader, username: str) -> int:
        query = select(users.c.id).where(users.c.username == username)
        row = None if "\x00" in username else (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"no user {username!r}")
        return int(row.id)

    async def set_member(self, organization: str, username: str, is_owner: bool) -> None:
        """Add a member to an organization or change whether they own it."""
        async with self._store.writing() as conn:
            org_id = await self._organization_id(conn, organization)
            user_id = await self._user_id(conn, username)
            statement = self._store.insert(organization_members).values(
                organization_id=org_id, user_id=user_id, is_owner=is_owner
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[organization_members.c.organization_id, organization_members.c.user_id],
                    set_={"is_owner": is_owner},
                )
            )

    async def remove_member(self, organization: str, username: str) -> None:
        """Remove a user from an organization and its teams."""
        async with self._store.writing() as conn:
            org_id = await self._organization_id(conn, organization)
            user_id = await self._user_id(conn, username)
            team_ids = select(teams.c.id).where(teams.c.organization_id == org_id)
            await conn.execute(
                delete(team_members).where(team_members.c.user_id == user_id, team_members.c.team_id.in_(team_ids))
            )
            result = await conn.execute(
                delete(organization_members).where(
                    organization_members.c.organization_id == org_id, organization_members.c.user_id == user_id
                )
            )
            if not result.rowcount:
                raise NotFound(f"{username!r} is not a member of {organization!r}")

    async def list_members(self, organization: str) -> list[MemberRecord]:
        """An organization's members."""
        async with self._store.reading() as conn:
            org_id = await self._organization_id(conn, organization)
            rows = (
                await conn.execute(
                    select(users.c.username, organization_members.c.is_owner)
                    .select_from(organization_members.join(users, users.c.id == organization_members.c.user_id))
                    .where(organization_members.c.organization_id == org_id)
                    .order_by(users.c.username)
                )
            ).all()
        return [MemberRecord(row.username, bool(row.is_owner)) for row in rows]

    async def organizations_of(self, username: str) -> dict[str, bool]:
        """The organizations a user belongs to, and whether they own each."""
        async with self._store.reading() as conn:
            rows = (
                await conn.execute(
                    select(organizations.c.name, organization_members.c.is_owner)
                    .select_from(
                        organization_members.join(
                            organizations, organizations.c.id == organization_members.c.organization_id
                        ).join(users, users.c.id == organization_members.c.user_id)
                    )
                    .where(users.c.username == username)
                )
            ).all()
        return {row.name: bool(row.is_owner) for row in rows}

    # Teams

    async def create_team(self, organization: str, name: str) -> TeamRecord:
        """A new, empty team."""
        try:
            async with self._store.writing() as conn:
                org_id = await self._organization_id(conn, organization)
                await conn.execute(teams.insert().values(organization_id=org_id, name=name))
        except IntegrityError as exc:
            raise Conflict(f"team {name!r} exists in {organization!r}") from exc
        return await self.get_team(organization, name)

    async def _team_id(self, conn: Reader, organization: str, name: str) -> int:
        org_id = await self._organization_id(conn, organization)
        query = select(teams.c.id).where(teams.c.organization_id == org_id, teams.c.name == name)
        row = None if "\x00" in name else (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"no team {name!r} in {organization!r}")
        return int(row.id)

    async def get_team(self, organization: str, name: str) -> TeamRecord:
        """A team with its members."""
        async with self._store.reading() as conn:
            team_id = await self._team_id(conn, organization, name)
            members = (
                await conn.execute(
                    select(users.c.username)
                    .select_from(team_members.join(users, users.c.id == team_members.c.user_id))
                    .where(team_members.c.team_id == team_id)
                    .order_by(users.c.username)
                )
            ).scalars()
            return TeamRecord(team_id, organization, name, tuple(members))

    async def list_teams(self, organization: str) -> list[TeamRecord]:
        """An organization's teams."""
        async with self._store.reading() as conn:
            org_id = await self._organization_id(conn, organization)
            names = list(
                (
                    await conn.execute(
                        select(teams.c.name).where(teams.c.organization_id == org_id).order_by(teams.c.name)
                    )
                ).scalars()
            )
        return [await self.get_team(organization, name) for name in names]

    async def delete_team(self, organization: str, name: str) -> None:
        """Remove a team and its grants."""
        async with self._store.writing() as conn:
            team_id = await self._team_id(conn, organization, name)
            await conn.execute(delete(grants).where(grants.c.subject_kind == "team", grants.c.subject_id == team_id))
            await conn.execute(delete(team_members).where(team_members.c.team_id == team_id))
            await conn.execute(delete(teams).where(teams.c.id == team_id))

    async def set_team_member(self, organization: str, team: str, username: str, present: bool) -> None:
        """Add (``present``) or remove a team member; members must belong to the organization."""
        async with self._store.writing() as conn:
            team_id = await self._team_id(conn, organization, team)
            user_id = await self._user_id(conn, username)
            if present:
                org_id = await self._organization_id(conn, organization)
                await conn.execute(
                    self._store.insert(organization_members)
                    .values(organization_id=org_id, user_id=user_id, is_owner=False)
                    .on_conflict_do_nothing()
                )
                await conn.execute(
                    self._store.insert(team_members).values(team_id=team_id, user_id=user_id).on_conflict_do_nothing()
                )
            else:
                await conn.execute(
                    delete(team_members).where(team_members.c.team_id == team_id, team_members.c.user_id == user_id)
                )

    # Robots

    async def create_robot(self, namespace: str, name: str, description: str | None) -> RobotRecord:
        """A robot account in a namespace."""
        try:
            async with self._store.writing() as conn:
                await conn.execute(
                    robots.insert().values(namespace=namespace, name=name, description=description, created_at=utcnow())
                )
                row = (
                    await conn.execute(select(robots).where(robots.c.namespace == namespace, robots.c.name == name))
                ).one()
        except IntegrityError as exc:
            raise Conflict(f"robot {namespace}+{name} exists") from exc
        return _robot(row)

    async def get_robot(self, namespace: str, name: str) -> RobotRecord | None:
        """A robot by namespace and name."""
        async with self._store.reading() as conn:
            row = (
                await conn.execute(select(robots).where(robots.c.namespace == namespace, robots.c.name == name))
            ).first()
        return None if row is None else _robot(row)

    async def list_robots(self, namespace: str) -> list[RobotRecord]:
        """A namespace's robots."""
        async with self._store.reading() as conn:
            rows = (
                await conn.execute(select(robots).where(robots.c.namespace == namespace).order_by(robots.c.name))
            ).all()
        return [_robot(row) for row in rows]

    async def delete_robot(self, namespace: str, name: str) -> None:
        """Remove a robot with its tokens and grants."""
        async with self._store.writing() as conn:
            row = (
                await conn.execute(select(robots.c.id).where(robots.c.namespace == namespace, robots.c.name == name))
            ).first()
            if row is None:
                raise NotFound(f"no robot {namespace}+{name}")
            await self._delete_robot_ids(conn, [int(row.id)])

    async def _delete_robots_of(self, conn: Writer, namespace: str) -> None:
        ids = [
            int(i) for i in (await conn.execute(select(robots.c.id).where(robots.c.namespace == namespace))).scalars()
        ]
        if ids:
            await self._delete_robot_ids(conn, ids)

    async def _delete_robot_ids(self, conn: Writer, ids: list[int]) -> None:
        await conn.execute(delete(grants).where(grants.c.subject_kind == "robot", grants.c.subject_id.in_(ids)))
        await conn.execute(delete(access_tokens).where(access_tokens.c.robot_id.in_(ids)))
        await conn.execute(delete(robots).where(robots.c.id.in_(ids)))

    async def subject_id(self, kind: str, name: str) -> int:
        """The id of a user (``name``), team (``org/team``) or robot (``namespace+robot``)."""
        async with self._store.reading() as conn:
            if kind == "user":
                return await self._user_id(conn, name)
            if kind == "team":
                organization, _, team = name.partition("/")
                return await self._team_id(conn, organization, team)
            namespace, _, robot = name.partition("+")
            row = (
                await conn.execute(select(robots.c.id).where(robots.c.namespace == namespace, robots.c.name == robot))
            ).first()
            if row is None:
                raise NotFound(f"no robot {name!r}")
            return int(row.id)
