"""The access model seen from outside: who may do what on which repository, in Basic and token mode.

One server per mode (SQLite), both started from one set of accounts made with the
``portside`` CLI. Every principal calls every endpoint on a public, a private and a
missing repository of an organization (``acme``) and on a private and a missing one of
a user (``olivia``), the way a real client would: Basic credentials on each request, or
in token mode the request without credentials, a token for the challenge's scope, then
the request with the token.

What a principal may do comes from the table :data:`PRINCIPALS` below, written from
the accounts this module creates, not from the policy under test.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from portside.auth.roles import Role
from tests.support.accounts import (
    AuthServer,
    Caller,
    PortsideCli,
    SmallImage,
    auth_env,
    granted_access,
    manifest_variant,
    parse_challenge,
    push_blob_as,
    push_manifest_as,
    push_small_image,
)
from tests.support.protocol import OCI_MANIFEST, error_codes, sha256
from tests.support.rawhttp import raw_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

MODES = ("basic", "token")
NAMESPACES = ("olivia", "acme")  # a user's namespace and an organization's
PUBLIC = frozenset({"acme/public"})
EXISTING = ("olivia/private", "acme/public", "acme/private")
REPOSITORIES = ("olivia/private", "olivia/missing", "acme/public", "acme/private", "acme/missing")
PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Who:
    """A principal of the matrix and what the accounts below let it do.

    ``rules`` maps ``"ns/*"``, an exact repository name or ``"*"`` to a role;
    ``ceiling`` caps the result (a personal access or robot token's role).
    """

    key: str
    login: str | None = None
    rules: tuple[tuple[str, Role], ...] = ()
    ceiling: Role | None = None
    secret: str = "password"  # "password", or "pat"/"robot": a token made by the CLI

    @property
    def anonymous(self) -> bool:
        return self.login is None


def _on_privates(role: Role) -> tuple[tuple[str, Role], ...]:
    return (("olivia/private", role), ("acme/private", role))


PRINCIPALS: tuple[Who, ...] = (
    Who("anonymous"),
    Who("reader", "rita", (("rita/*", Role.ADMIN), *_on_privates(Role.PULL))),
    Who("writer", "wes", (("wes/*", Role.ADMIN), *_on_privates(Role.PUSH))),
    Who("deleter", "dana", (("dana/*", Role.ADMIN), *_on_privates(Role.DELETE))),
    Who("repo_admin", "adam", (("adam/*", Role.ADMIN), *_on_privates(Role.ADMIN))),
    Who("namespace_owner", "olivia", (("olivia/*", Role.ADMIN),)),
    Who("org_owner", "owen", (("owen/*", Role.ADMIN), ("acme/*", Role.ADMIN))),
    # tina is in team acme/devs, which has push on the namespace acme.
    Who("team_member", "tina", (("tina/*", Role.ADMIN), ("acme/*", Role.PUSH))),
    # The robot acme+ci has delete on acme/private, but its token is limited to push;
    # being in the namespace acme gives it nothing more.
    Who("robot", "acme+ci", (("acme/private", Role.DELETE),), ceiling=Role.PUSH, secret="robot"),
    # olivia's personal access token limited to pull.
    Who("pat_pull", "olivia", (("olivia/*", Role.ADMIN),), ceiling=Role.PULL, secret="pat"),
    Who("stranger", "sam", (("sam/*", Role.ADMIN),)),
    Who("site_admin", "root", (("*", Role.ADMIN),)),
)
BY_KEY = {who.key: who for who in PRINCIPALS}


def expected_role(who: Who, repository: str) -> Role | None:
    """What ``who`` may do on ``repository`` given the accounts of this module."""
    roles = [Role.PULL] if repository in PUBLIC else []
    for pattern, role in who.rules:
        if pattern in ("*", repository) or (pattern.endswith("/*") and repository.startswith(pattern[:-1])):
            roles.append(role)
    if not roles:
        return None
    return max(roles) if who.ceiling is None else min(max(roles), who.ceiling)


def may(who: Who, repository: str, needs: Role) -> bool:
    role = expected_role(who, repository)
    return role is not None and role >= needs


# The world: accounts, servers and content


@pytest.fixture(scope="module")
def accounts_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the accounts of :data:`PRINCIPALS`, made once with the CLI and copied per server."""
    data = tmp_path_factory.mktemp("access-template") / "data"
    cli = PortsideCli(AuthServer(data))
    cli.run("migrate")
    for user in ("rita", "wes", "dana", "adam", "olivia", "owen", "tina", "sam"):
        cli.create_user(user, PASSWORD)
    cli.create_user("root", PASSWORD, admin=True)
    cli.create_org("acme", "owen")
    cli.team("acme", "devs", "tina")
    cli.grant("team:acme/devs", "namespace:acme", "push")
    for user, role in (("rita", "pull"), ("wes", "push"), ("dana", "delete"), ("adam", "admin")):
        for repository in ("olivia/private", "acme/private"):
            cli.grant(f"user:{user}", f"repository:{repository}", role)
    cli.create_robot("acme", "ci")
    cli.grant("robot:acme+ci", "repository:acme/private", "delete")
    (data / "secrets.json").write_text(
        json.dumps({"robot": cli.create_token("acme+ci", "push"), "pat": cli.create_token("olivia", "pull")})
    )
    return data


@dataclass
class World:
    """One server in one mode, its content, and a caller per principal."""

    mode: str
    server: AuthServer
    images: dict[str, SmallImage]
    callers: dict[str, Caller]
    observed: dict[tuple[str, str, str], Outcome] = field(default_factory=dict)

    @property
    def root(self) -> Caller:
        return self.callers["site_admin"]

    def image_for(self, repository: str) -> SmallImage:
        """The repository's image; for a missing repository, its namespace's private image."""
        namespace, _, kind = repository.partition("/")
        return self.images[f"{namespace}/private" if kind == "missing" else repository]

    def close(self) -> None:
        for caller in self.callers.values():
            caller.close()


@pytest.fixture(scope="module", params=MODES)
def world(
    request: pytest.FixtureRequest, accounts_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """A server in ``basic`` or ``token`` mode with one image in each public and private repository."""
    mode: str = request.param
    data = tmp_path_factory.mktemp(f"access-{mode}") / "data"
    shutil.copytree(accounts_template, data, ignore=shutil.ignore_patterns("keys", "secrets.json"))
    secrets = json.loads((accounts_template / "secrets.json").read_text())
    server = AuthServer(data, workers=1, env=auth_env(mode, token_lifetime_seconds=3600)).start()
    callers: dict[str, Caller] = {}
    try:
        for who in PRINCIPALS:
            credentials = None if who.login is None else (who.login, secrets.get(who.secret, PASSWORD))
            callers[who.key] = Caller(server.url, mode, credentials)
        images = {repository: push_small_image(callers["site_admin"], repository) for repository in EXISTING}
        cli = PortsideCli(server)
        for repository in PUBLIC:
            cli.set_public(repository)
        world = World(mode, server, images, callers)
        yield world
        world.close()
    finally:
        server.stop()


# The endpoints


@dataclass
class Outcome:
    """A response, and a check of the registry's state afterwards (given whether the call was allowed)."""

    response: httpx.Response
    verify: Callable[[bool], None] | None = None


Run = Callable[[World, Caller, str, SmallImage, bool], Outcome]


@dataclass(frozen=True)
class Op:
    """One endpoint: the role it needs, the scope its challenge names, and what an allowed call gets."""

    key: str
    needs: Role
    actions: str
    on_existing: tuple[int, str | None]
    on_missing: tuple[int, str | None]
    run: Run


def _session(world: World, repository: str) -> str:
    response = world.root.post(f"/v2/{repository}/blobs/uploads/")
    assert response.status_code == 202, response.text
    location: str = response.headers["Location"]
    return location


def _upload_location(world: World, repository: str, exists: bool) -> str:
    if exists:
        return _session(world, repository)
    return f"/v2/{repository}/blobs/uploads/{uuid.uuid4()}"


def blob_head(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    return Outcome(caller.head(f"/v2/{repo}/blobs/{image.layer}"))


def blob_get(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    return Outcome(caller.get(f"/v2/{repo}/blobs/{image.layer}"))


def manifest_head(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    return Outcome(caller.head(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}))


def manifest_get(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    response = caller.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    if response.status_code == 200:
        assert response.content == image.manifest
    return Outcome(response)


def manifest_put(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    tag = f"t-{uuid.uuid4().hex[:12]}"
    response = caller.put(f"/v2/{repo}/manifests/{tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST})

    def verify(allowed: bool) -> None:
        found = world.root.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert found.status_code == (200 if allowed and exists else 404)

    return Outcome(response, verify)


def manifest_delete(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    digest = image.digest
    if exists:
        variant = manifest_variant(image)
        digest = push_manifest_as(world.root, repo, sha256(variant), variant)
    response = caller.delete(f"/v2/{repo}/manifests/{digest}")

    def verify(allowed: bool) -> None:
        if exists:
            found = world.root.head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
            assert found.status_code == (404 if allowed else 200)

    return Outcome(response, verify)


def tag_delete(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    tag = "v1"
    if exists:
        tag = f"d-{uuid.uuid4().hex[:12]}"
        push_manifest_as(world.root, repo, tag, image.manifest)
    response = caller.delete(f"/v2/{repo}/manifests/{tag}")

    def verify(allowed: bool) -> None:
        if exists:
            found = world.root.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert found.status_code == (404 if allowed else 200)

    return Outcome(response, verify)


def tags_list(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    response = caller.get(f"/v2/{repo}/tags/list")
    if response.status_code == 200:
        assert "v1" in response.json()["tags"]
    return Outcome(response)


def referrers(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    return Outcome(caller.get(f"/v2/{repo}/referrers/{image.digest}"))


def upload_post(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    response = caller.post(f"/v2/{repo}/blobs/uploads/")
    if response.status_code == 202:
        assert response.headers["Location"].startswith(f"/v2/{repo}/blobs/uploads/")
    return Outcome(response)


def upload_patch(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    location = _upload_location(world, repo, exists)
    response = caller.patch(location, content=b"0123456789", headers={"Content-Type": "application/octet-stream"})

    def verify(allowed: bool) -> None:
        if exists:
            status = world.root.get(location)
            assert status.status_code == 204
            # A refused PATCH consumes nothing (and in token mode the 401 before the token neither).
            assert status.headers["Range"] == ("0-9" if allowed else "0-0")

    return Outcome(response, verify)


def upload_put(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    location = _upload_location(world, repo, exists)
    data = os.urandom(64)
    response = caller.put(location, params={"digest": sha256(data)}, content=data)

    def verify(allowed: bool) -> None:
        if exists:
            blob = world.root.head(f"/v2/{repo}/blobs/{sha256(data)}")
            assert blob.status_code == (200 if allowed else 404)
            if not allowed:
                assert world.root.get(location).status_code == 204

    return Outcome(response, verify)


def upload_get(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    location = _upload_location(world, repo, exists)
    return Outcome(caller.get(location))


def upload_delete(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    location = _upload_location(world, repo, exists)
    response = caller.delete(location)

    def verify(allowed: bool) -> None:
        if exists:
            assert world.root.get(location).status_code == (404 if allowed else 204)

    return Outcome(response, verify)


def blob_delete(world: World, caller: Caller, repo: str, image: SmallImage, exists: bool) -> Outcome:
    digest = push_blob_as(world.root, repo, os.urandom(64)) if exists else image.layer
    response = caller.delete(f"/v2/{repo}/blobs/{digest}")

    def verify(allowed: bool) -> None:
        if exists:
            assert world.root.head(f"/v2/{repo}/blobs/{digest}").status_code == (404 if allowed else 200)

    return Outcome(response, verify)


OPS: tuple[Op, ...] = (
    Op("blob_head", Role.PULL, "pull", (200, None), (404, None), blob_head),
    Op("blob_get", Role.PULL, "pull", (200, None), (404, "BLOB_UNKNOWN"), blob_get),
    Op("manifest_head", Role.PULL, "pull", (200, None), (404, None), manifest_head),
    Op("manifest_get", Role.PULL, "pull", (200, None), (404, "NAME_UNKNOWN"), manifest_get),
    Op("manifest_put", Role.PUSH, "pull,push", (201, None), (400, "MANIFEST_BLOB_UNKNOWN"), manifest_put),
    Op("manifest_delete", Role.DELETE, "delete", (202, None), (404, "NAME_UNKNOWN"), manifest_delete),
    Op("tag_delete", Role.DELETE, "delete", (202, None), (404, "NAME_UNKNOWN"), tag_delete),
    Op("tags_list", Role.PULL, "pull", (200, None), (404, "NAME_UNKNOWN"), tags_list),
    Op("referrers", Role.PULL, "pull", (200, None), (404, "NAME_UNKNOWN"), referrers),
    Op("upload_post", Role.PUSH, "pull,push", (202, None), (202, None), upload_post),
    Op("upload_patch", Role.PUSH, "pull,push", (202, None), (404, "BLOB_UPLOAD_UNKNOWN"), upload_patch),
    Op("upload_put", Role.PUSH, "pull,push", (201, None), (404, "BLOB_UPLOAD_UNKNOWN"), upload_put),
    Op("upload_get", Role.PUSH, "push", (204, None), (404, "BLOB_UPLOAD_UNKNOWN"), upload_get),
    Op("upload_delete", Role.PUSH, "pull,push", (204, None), (404, "BLOB_UPLOAD_UNKNOWN"), upload_delete),
    Op("blob_delete", Role.DELETE, "delete", (202, None), (404, "BLOB_UNKNOWN"), blob_delete),
)
OPS_BY_KEY = {op.key: op for op in OPS}


def observe(world: World, who: Who, repository: str, op: Op) -> Outcome:
    """Run ``op`` as ``who`` on ``repository`` once per world (later tests compare the same responses)."""
    key = (who.key, repository, op.key)
    if key not in world.observed:
        exists = not repository.endswith("/missing")
        caller = world.callers[who.key]
        outcome = op.run(world, caller, repository, world.image_for(repository), exists)
        if world.mode == "token":
            _assert_first_challenge(world, caller.last_challenge, f"repository:{repository}:{op.actions}")
        world.observed[key] = outcome
    return world.observed[key]


def _assert_first_challenge(world: World, first: httpx.Response | None, scope: str) -> None:
    """In token mode the request without credentials got a 401 naming the realm, service and scope."""
    assert first is not None and first.status_code == 401
    scheme, params = parse_challenge(first.headers.get("www-authenticate"))
    assert scheme == "bearer"
    assert params == {"realm": f"{world.server.url}/token", "service": "portside", "scope": scope}


def assert_denied(world: World, who: Who, response: httpx.Response, scope: str) -> None:
    """The refusal a client of this mode must see."""
    head = response.request.method == "HEAD"
    challenge = response.headers.get("www-authenticate")
    if world.mode == "basic" and not who.anonymous:
        assert response.status_code == 403, response.text
        assert head or error_codes(response) == ["DENIED"]
        assert challenge is None
        return
    assert response.status_code == 401, response.text
    assert head or error_codes(response) == ["UNAUTHORIZED"]
    scheme, params = parse_challenge(challenge)
    if world.mode == "basic":
        assert scheme == "basic" and params["realm"] == "portside"
    else:
        assert scheme == "bearer"
        assert params == {
            "realm": f"{world.server.url}/token",
            "service": "portside",
            "scope": scope,
            "error": "insufficient_scope",
        }


def _case_id(who: Who, repository: str, op: Op) -> str:
    return f"{who.key}-{repository}-{op.key}"


MATRIX = [
    pytest.param(who, repository, op, id=_case_id(who, repository, op))
    for who in PRINCIPALS
    for repository in REPOSITORIES
    for op in OPS
]


@pytest.mark.parametrize(("who", "repository", "op"), MATRIX)
def test_access_matrix(world: World, who: Who, repository: str, op: Op) -> None:
    outcome = observe(world, who, repository, op)
    response = outcome.response
    allowed = may(who, repository, op.needs)
    if allowed:
        exists = not repository.endswith("/missing")
        status, code = op.on_existing if exists else op.on_missing
        assert response.status_code == status, response.text
        if code is not None:
            assert error_codes(response) == [code]
    else:
        assert_denied(world, who, response, f"repository:{repository}:{op.actions}")
    if outcome.verify is not None:
        outcome.verify(allowed)


# Private and missing repositories look the same to whoever may not pull them

_VARYING_HEADERS = {"date", "content-length", "connection", "www-authenticate", "x-request-id"}


def _without_scope(challenge: str | None) -> dict[str, str] | None:
    if challenge is None:
        return None
    scheme, params = parse_challenge(challenge)
    params.pop("scope", None)
    return {"scheme": scheme, **params}


UNDISTINGUISHABLE = [
    pytest.param(who, namespace, op, id=f"{who.key}-{namespace}-{op.key}")
    for who in PRINCIPALS
    for namespace in NAMESPACES
    if not may(who, f"{namespace}/private", Role.PULL)
    for op in OPS
]


@pytest.mark.parametrize(("who", "namespace", "op"), UNDISTINGUISHABLE)
def test_private_and_missing_repositories_look_the_same(world: World, who: Who, namespace: str, op: Op) -> None:
    private = observe(world, who, f"{namespace}/private", op).response
    missing = observe(world, who, f"{namespace}/missing", op).response
    assert private.status_code == missing.status_code
    if private.request.method != "HEAD":
        assert error_codes(private) == error_codes(missing)
    assert {k: v for k, v in private.headers.items() if k not in _VARYING_HEADERS} == {
        k: v for k, v in missing.headers.items() if k not in _VARYING_HEADERS
    }
    assert _without_scope(private.headers.get("www-authenticate")) == _without_scope(
        missing.headers.get("www-authenticate")
    )


# Catalog


@pytest.mark.parametrize("who", PRINCIPALS, ids=lambda who: who.key)
def test_catalog_lists_only_what_the_caller_may_pull(world: World, who: Who) -> None:
    response = world.callers[who.key].get("/v2/_catalog")
    assert response.status_code == 200, response.text
    listed = response.json()["repositories"]
    existing = sorted(world.images)
    assert sorted(set(listed) & set(existing)) == [name for name in existing if may(who, name, Role.PULL)]
    # Nothing else this module created (mount targets, say) leaks either.
    assert [name for name in listed if not may(who, name, Role.PULL)] == []
    if world.mode == "token":
        _assert_first_challenge(world, world.callers[who.key].last_challenge, "registry:catalog:*")


# Cross-repository mounts


def _mount_target(who: Who) -> str:
    """A repository ``who`` may push to (when it may push anywhere) and that is no source."""
    if who.key == "robot":
        return "acme/private"
    return f"{who.login or 'olivia'}/mounts"


MOUNTS = [
    pytest.param(who, source, id=f"{who.key}-from-{source}")
    for who in PRINCIPALS
    for source in REPOSITORIES
    if _mount_target(who) != source
]


@pytest.mark.parametrize(("who", "source"), MOUNTS)
def test_mount_needs_pull_on_the_source(world: World, who: Who, source: str) -> None:
    target = _mount_target(who)
    digest = world.image_for(source).layer
    caller = world.callers[who.key]
    response = caller.post(
        f"/v2/{target}/blobs/uploads/",
        params={"mount": digest, "from": source},
        extra_scopes=[f"repository:{source}:pull"],
    )
    if not may(who, target, Role.PUSH):
        assert_denied(world, who, response, f"repository:{target}:pull,push")
        return
    if may(who, source, Role.PULL) and not source.endswith("/missing"):
        assert response.status_code == 201, response.text
        assert response.headers["Docker-Content-Digest"] == digest
        assert caller.head(f"/v2/{target}/blobs/{digest}").status_code == 200
        return
    # Never 201: the caller gets an ordinary upload session and must send the bytes.
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert location.startswith(f"/v2/{target}/blobs/uploads/")
    assert response.headers["Range"] == "0-0"
    if not source.endswith("/missing"):
        assert caller.head(f"/v2/{target}/blobs/{digest}").status_code == 404
    assert caller.delete(location).status_code == 204


# Rejected requests leave an upload alone


@pytest.mark.parametrize("who", ["anonymous", "stranger", "reader", "pat_pull"])
def test_rejected_patch_leaves_the_upload_range_unchanged(world: World, who: str) -> None:
    repository = "olivia/private"
    location = _session(world, repository)
    first, second = os.urandom(100), os.urandom(50)
    response = world.root.patch(location, content=first, headers={"Content-Range": "0-99"})
    assert response.status_code == 202 and response.headers["Range"] == "0-99"

    refused = world.callers[who].patch(location, content=second, headers={"Content-Range": "100-149"})
    assert refused.status_code in (401, 403)
    # No credentials at all, and a malformed Authorization header, are refused too.
    assert httpx.patch(f"{world.server.url}{location}", content=second).status_code == 401
    garbage = {"Authorization": "Bearer not-a-token" if world.mode == "token" else "Basic !!!"}
    assert httpx.patch(f"{world.server.url}{location}", content=second, headers=garbage).status_code == 401

    status = world.root.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-99"
    response = world.root.patch(location, content=second, headers={"Content-Range": "100-149"})
    assert response.status_code == 202 and response.headers["Range"] == "0-149"
    digest = sha256(first + second)
    assert world.root.put(location, params={"digest": digest}).status_code == 201
    assert world.root.get(f"/v2/{repository}/blobs/{digest}").content == first + second


# Odd credentials


def test_empty_basic_credentials_mean_anonymous(world: World) -> None:
    # containers/image sends "Basic Og==" (an empty user and password) when it has no credentials.
    empty = {"Authorization": "Basic Og=="}
    if world.mode == "basic":
        public = httpx.get(f"{world.server.url}/v2/acme/public/tags/list", headers=empty)
        assert public.status_code == 200, public.text
        private = httpx.get(f"{world.server.url}/v2/acme/private/tags/list", headers=empty)
        assert private.status_code == 401
        assert parse_challenge(private.headers["www-authenticate"])[0] == "basic"
    else:
        response = httpx.get(
            f"{world.server.url}/token",
            params={"service": "portside", "scope": ["repository:acme/public:pull", "repository:acme/private:pull"]},
            headers=empty,
        )
        assert response.status_code == 200, response.text
        assert granted_access(response.json()["token"]) == {"repository:acme/public": {"pull"}}


@pytest.mark.parametrize(
    "authorization",
    [b"Basic \x80\x81", b"Basic \xc3\xbc", b"Bearer \x80", b"Basic", b"Digest abc", b"Basic YWxpY2U="],
    ids=["basic-latin1", "basic-utf8", "bearer-latin1", "basic-empty", "digest", "basic-no-colon"],
)
def test_malformed_authorization_is_a_401_not_a_server_error(world: World, authorization: bytes) -> None:
    head = b"GET /v2/acme/private/tags/list HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + authorization + b"\r\n"
    response = raw_request("127.0.0.1", world.server.port, head)
    assert response.status == 401, response.body
    assert response.header("www-authenticate")
    if world.mode == "token":
        token = b"GET /token?service=portside HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + authorization + b"\r\n"
        assert raw_request("127.0.0.1", world.server.port, token).status in (200, 401)


def test_a_repository_named_like_its_namespace_is_in_its_owners_catalog(world: World) -> None:
    olivia = world.callers["namespace_owner"]
    push_small_image(olivia, "olivia")
    assert olivia.get("/v2/olivia/tags/list").status_code == 200  # the policy lets her
    assert "olivia" in olivia.get("/v2/_catalog").json()["repositories"]
