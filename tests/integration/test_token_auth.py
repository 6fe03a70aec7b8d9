"""Docker token authentication against a real server: the token server, forged tokens, login limits, key rotation."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from portside.auth.scopes import Scope
from portside.auth.tokens import KeyRing, TokenIssuer
from tests.support.accounts import (
    AuthServer,
    Caller,
    PortsideCli,
    SmallImage,
    audit_events,
    auth_env,
    basic_header,
    bearer,
    forge_token,
    get_token,
    granted_access,
    hs256_token,
    parse_challenge,
    push_small_image,
    replace_payload,
    token_for,
    unverified_claims,
    unverified_header,
)
from tests.support.protocol import OCI_MANIFEST, error_codes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = ("root", "root-password-1")
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-12")


class Site:
    """A token-mode server with alice's private ``alice/app`` and public ``alice/pub``."""

    def __init__(self, server: AuthServer, app: SmallImage, pub: SmallImage) -> None:
        self.server = server
        self.url = server.url
        self.app = app
        self.pub = pub

    def manifest_url(self, repository: str, reference: str = "v1") -> str:
        return f"{self.url}/v2/{repository}/manifests/{reference}"

    def keys(self) -> KeyRing:
        """The server's signing keys, as read from its data dir."""
        return KeyRing(self.server.data_dir / "keys")

    def issuer(
        self, *, issuer: str = "portside", service: str = "portside", keys: KeyRing | None = None
    ) -> TokenIssuer:
        return TokenIssuer(keys or self.keys(), issuer, service, 300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("token-auth") / "data"
    env = auth_env("token", admin_username=ROOT[0], admin_password=ROOT[1])
    server = AuthServer(data, env=env).start()
    try:
        cli = PortsideCli(server)
        cli.create_user(*ALICE)
        cli.create_user(*BOB)
        alice = Caller(server.url, "token", ALICE)
        app = push_small_image(alice, "alice/app")
        pub = push_small_image(alice, "alice/pub")
        alice.close()
        cli.set_public("alice/pub")
        yield Site(server, app, pub)
    finally:
        server.stop()


def _claims(site: Site, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "portside",
        "sub": "alice",
        "aud": "portside",
        "exp": now + 300,
        "nbf": now - 1,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "access": [{"type": "repository", "name": "alice/app", "actions": ["pull"]}],
    }
    claims.update(overrides)
    return claims


def _assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert error_codes(response) == ["UNAUTHORIZED"]
    scheme, params = parse_challenge(response.headers.get("www-authenticate"))
    assert scheme == "bearer"
    assert params["error"] == "invalid_token"
    assert params["service"] == "portside"


def _assert_insufficient_scope(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 401, response.text
    assert error_codes(response) == ["UNAUTHORIZED"]
    scheme, params = parse_challenge(response.headers.get("www-authenticate"))
    assert scheme == "bearer"
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == scope


# The token server and what its tokens allow


def test_first_administrator_comes_from_the_environment(site: Site) -> None:
    token = token_for(site.url, ["repository:alice/app:pull"], ROOT)
    assert granted_access(token) == {"repository:alice/app": {"pull"}}
    assert unverified_claims(token)["sub"] == "root"


def test_a_token_of_the_owner_pulls_the_private_repository(site: Site) -> None:
    token = token_for(site.url, ["repository:alice/app:pull"], ALICE)
    claims, header = unverified_claims(token), unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == site.keys().signing_key.kid
    assert claims["iss"] == "portside" and claims["aud"] == "portside" and claims["sub"] == "alice"
    assert claims["nbf"] <= time.time() < claims["exp"]
    response = httpx.get(site.manifest_url("alice/app"), headers={**bearer(token), "Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert response.content == site.app.manifest


def test_asking_for_push_on_someone_elses_repository_gets_a_token_without_push(site: Site) -> None:
    response = get_token(site.url, ["repository:alice/pub:pull,push", "repository:alice/app:pull,push"], BOB)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert granted_access(token) == {"repository:alice/pub": {"pull"}}
    assert response.json()["scope"] == "repository:alice/pub:pull"
    put = httpx.put(
        site.manifest_url("alice/pub", "hijack"),
        content=site.pub.manifest,
        headers={**bearer(token), "Content-Type": OCI_MANIFEST},
    )
    _assert_insufficient_scope(put, "repository:alice/pub:pull,push")
    private = httpx.get(site.manifest_url("alice/app"), headers=bearer(token))
    _assert_insufficient_scope(private, "repository:alice/app:pull")
    assert httpx.get(site.manifest_url("alice/pub", "hijack"), headers=bearer(token)).status_code == 404


def test_a_token_for_one_repository_does_not_open_another(site: Site) -> None:
    token = token_for(site.url, ["repository:alice/pub:pull,push,delete"], ALICE)
    response = httpx.get(site.manifest_url("alice/app"), headers=bearer(token))
    _assert_insufficient_scope(response, "repository:alice/app:pull")
    blob = httpx.get(f"{site.url}/v2/alice/app/blobs/{site.app.layer}", headers=bearer(token))
    _assert_insufficient_scope(blob, "repository:alice/app:pull")


def test_an_anonymous_token_grants_public_pull_only(site: Site) -> None:
    scopes = ["repository:alice/pub:pull,push,delete", "repository:alice/app:pull", "repository:alice/nothing:pull"]
    token = token_for(site.url, scopes)
    assert granted_access(token) == {"repository:alice/pub": {"pull"}}
    assert unverified_claims(token)["sub"] == ""
    assert httpx.get(site.manifest_url("alice/pub"), headers=bearer(token)).status_code == 200
    _assert_insufficient_scope(
        httpx.get(site.manifest_url("alice/app"), headers=bearer(token)), "repository:alice/app:pull"
    )


def test_malformed_scopes_are_ignored_not_refused(site: Site) -> None:
    response = get_token(site.url, ["nonsense", "repository:alice/pub", "repository:alice/pub:pull"], ALICE)
    assert response.status_code == 200
    assert granted_access(response.json()["token"]) == {"repository:alice/pub": {"pull"}}


def test_a_token_for_another_service_is_not_issued(site: Site) -> None:
    response = get_token(site.url, ["repository:alice/app:pull"], ALICE, service="elsewhere")
    assert response.status_code in (400, 401, 403)
    assert "token" not in response.json()


def test_bad_credentials_at_the_token_server_are_refused_and_audited(site: Site) -> None:
    for credentials in (("alice", "wrong-password"), ("nobody-here", "wrong-password")):
        response = get_token(site.url, ["repository:alice/app:pull"], credentials)
        assert response.status_code == 401, response.text
        assert error_codes(response) == ["UNAUTHORIZED"]
        assert "token" not in response.text
        # Wrong password and unknown user read the same.
        assert response.json()["errors"][0]["message"] == "invalid username or password"
    failed = audit_events(site.server, action="login-failed", actor="user:alice")
    assert failed and failed[0].address == "127.0.0.1"
    assert audit_events(site.server, action="login-failed", actor="user:nobody-here")


def test_malformed_basic_credentials_at_the_token_server_are_refused(site: Site) -> None:
    response = httpx.get(f"{site.url}/token", params={"service": "portside"}, headers={"Authorization": "Basic %%%"})
    assert response.status_code == 401


def test_get_token_with_offline_token_returns_a_refresh_token(site: Site) -> None:
    response = httpx.get(
        f"{site.url}/token",
        params={"service": "portside", "scope": "repository:alice/app:pull", "offline_token": "true", "client_id": "t"},
        headers={"Authorization": basic_header(*ALICE)},
    )
    assert response.status_code == 200, response.text
    refresh = response.json()["refresh_token"]
    refreshed = _oauth(site, grant_type="refresh_token", refresh_token=refresh, scope="repository:alice/app:pull")
    assert refreshed.status_code == 200, refreshed.text
    assert granted_access(refreshed.json()["access_token"]) == {"repository:alice/app": {"pull"}}
    # Without offline_token there is none.
    assert "refresh_token" not in get_token(site.url, ["repository:alice/app:pull"], ALICE).json()


def test_personal_access_tokens_log_in_until_they_expire(site: Site) -> None:
    cli = PortsideCli(site.server)
    valid = cli.create_token("alice", "pull", expires_days=1)
    expired = cli.create_token("alice", "admin", expires_days=1)
    # Age the second token past its expiry, as time would.
    with sqlite3.connect(site.server.data_dir / "portside.db") as db:
        db.execute(
            "UPDATE access_tokens SET expires_at = '2000-01-01 00:00:00' WHERE id = (SELECT max(id) FROM access_tokens)"
        )
    token = token_for(site.url, ["repository:alice/app:pull,push"], ("alice", valid))
    assert granted_access(token) == {"repository:alice/app": {"pull"}}
    response = get_token(site.url, ["repository:alice/app:pull"], ("alice", expired))
    assert response.status_code == 401
    # A token is its owner's only.
    assert get_token(site.url, ["repository:alice/app:pull"], ("bob", valid)).status_code == 401


# Forged, tampered and stale tokens


def _forgeries(site: Site) -> dict[str, str]:
    keys = site.keys()
    kid = keys.signing_key.kid
    public_pem = keys.signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    scopes = [Scope("repository", "alice/app", frozenset({"pull"}))]
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "alg-none": forge_token({"alg": "none", "typ": "JWT", "kid": kid}, _claims(site)),
        "alg-none-uppercase": forge_token({"alg": "None", "typ": "JWT", "kid": kid}, _claims(site)),
        "hs256-with-public-key": hs256_token({"alg": "HS256", "typ": "JWT", "kid": kid}, _claims(site), public_pem),
        "expired": site.issuer().issue("alice", scopes, now=time.time() - 3600)[0],
        "not-yet-valid": site.issuer().issue("alice", scopes, now=time.time() + 3600)[0],
        "other-audience": site.issuer(service="other-registry").issue("alice", scopes)[0],
        "other-issuer": site.issuer(issuer="someone-else").issue("alice", scopes)[0],
        "unknown-key": jwt.encode(_claims(site), stranger_key, algorithm="ES256", headers={"kid": "unknown"}),
        "known-kid-wrong-key": jwt.encode(_claims(site), stranger_key, algorithm="ES256", headers={"kid": kid}),
        "no-kid": jwt.encode(_claims(site), keys.signing_key.private_key, algorithm="ES256"),
        "missing-exp": jwt.encode(
            {k: v for k, v in _claims(site).items() if k != "exp"},
            keys.signing_key.private_key,
            algorithm="ES256",
            headers={"kid": kid},
        ),
        "garbage": "garbage",
        "three-garbage-parts": "a.b.c",
    }


FORGERIES = [
    "alg-none",
    "alg-none-uppercase",
    "hs256-with-public-key",
    "expired",
    "not-yet-valid",
    "other-audience",
    "other-issuer",
    "unknown-key",
    "known-kid-wrong-key",
    "no-kid",
    "missing-exp",
    "garbage",
    "three-garbage-parts",
    "empty",
]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_or_stale_tokens_are_refused(site: Site, forgery: str) -> None:
    token = "" if forgery == "empty" else _forgeries(site)[forgery]
    authorization = f"Bearer {token}".strip()
    response = httpx.get(site.manifest_url("alice/app"), headers={"Authorization": authorization})
    _assert_invalid_token(response)
    head = httpx.head(site.manifest_url("alice/app"), headers={"Authorization": authorization})
    assert head.status_code == 401 and "invalid_token" in head.headers["www-authenticate"]


def test_a_correctly_signed_token_made_here_is_accepted(site: Site) -> None:
    # The control for the forgeries: the same construction with the right issuer, audience and key works.
    token = site.issuer().issue("alice", [Scope("repository", "alice/app", frozenset({"pull"}))])[0]
    assert httpx.get(site.manifest_url("alice/app"), headers=bearer(token)).status_code == 200


def test_a_tampered_access_claim_breaks_the_signature(site: Site) -> None:
    token = token_for(site.url, ["repository:alice/pub:pull"], BOB)
    claims = unverified_claims(token)
    claims["access"] = [{"type": "repository", "name": "alice/app", "actions": ["pull", "push", "delete", "*"]}]
    claims["sub"] = "alice"
    forged = replace_payload(token, claims)
    _assert_invalid_token(httpx.get(site.manifest_url("alice/app"), headers=bearer(forged)))
    put = httpx.put(
        site.manifest_url("alice/app", "evil"),
        content=site.app.manifest,
        headers={**bearer(forged), "Content-Type": OCI_MANIFEST},
    )
    _assert_invalid_token(put)
    # The original, untouched, still does what it says.
    assert httpx.get(site.manifest_url("alice/pub"), headers=bearer(token)).status_code == 200


def test_basic_credentials_are_accepted_on_the_registry_in_token_mode_too(site: Site) -> None:
    # As on Harbor: curl -u and clients that only speak Basic need no token; the policy decides.
    response = httpx.get(
        site.manifest_url("alice/app"), headers={"Authorization": basic_header(*ALICE), "Accept": OCI_MANIFEST}
    )
    assert response.status_code == 200
    assert response.content == site.app.manifest
    # Someone else's private repository: denied, as in Basic mode (nothing says whether it exists).
    denied = httpx.get(site.manifest_url("alice/app"), headers={"Authorization": basic_header(*BOB)})
    assert denied.status_code == 403
    assert error_codes(denied) == ["DENIED"]
    missing = httpx.get(site.manifest_url("alice/nothing"), headers={"Authorization": basic_header(*BOB)})
    assert (missing.status_code, error_codes(missing)) == (403, ["DENIED"])
    # A wrong password is refused with the Bearer challenge, so that clients turn to the token server.
    wrong = httpx.get(site.manifest_url("alice/app"), headers={"Authorization": basic_header("alice", "wrong-pass")})
    assert wrong.status_code == 401
    scheme, _params = parse_challenge(wrong.headers["www-authenticate"])
    assert scheme == "bearer"
    # Without credentials, the challenge names the scope, as before.
    anonymous = httpx.get(site.manifest_url("alice/app"))
    assert anonymous.status_code == 401
    scheme, params = parse_challenge(anonymous.headers["www-authenticate"])
    assert scheme == "bearer" and params["scope"] == "repository:alice/app:pull"


# OAuth2 (POST /token)


def _oauth(site: Site, **form: str) -> httpx.Response:
    return httpx.post(f"{site.url}/token", data={"service": "portside", "client_id": "tests", **form})


def test_oauth2_password_grant_with_offline_access_returns_a_refresh_token(site: Site) -> None:
    response = _oauth(
        site,
        grant_type="password",
        username=ALICE[0],
        password=ALICE[1],
        access_type="offline",
        scope="repository:alice/app:pull",
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["refresh_token"].startswith("pst_")
    assert granted_access(document["access_token"]) == {"repository:alice/app": {"pull"}}
    assert response.headers["cache-control"] == "no-store"

    refreshed = _oauth(
        site,
        grant_type="refresh_token",
        refresh_token=document["refresh_token"],
        scope="repository:alice/app:pull,push",
    )
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] == document["refresh_token"]
    assert granted_access(new["access_token"]) == {"repository:alice/app": {"pull", "push"}}
    assert unverified_claims(new["access_token"])["sub"] == "alice"
    # The refreshed token works on the registry.
    upload = httpx.post(f"{site.url}/v2/alice/app/blobs/uploads/", headers=bearer(new["access_token"]))
    assert upload.status_code == 202, upload.text
    assert (
        httpx.delete(f"{site.url}{upload.headers['location']}", headers=bearer(new["access_token"])).status_code == 204
    )


def test_oauth2_password_grant_without_offline_access_has_no_refresh_token(site: Site) -> None:
    response = _oauth(site, grant_type="password", username=ALICE[0], password=ALICE[1])
    assert response.status_code == 200
    assert "refresh_token" not in response.json()


def test_oauth2_bogus_refresh_token_is_an_invalid_grant(site: Site) -> None:
    for bogus in ("pst_" + "x" * 43, "", "not-even-a-token"):
        response = _oauth(site, grant_type="refresh_token", refresh_token=bogus)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_grant"


def test_oauth2_wrong_password_and_unknown_grant_type(site: Site) -> None:
    wrong = _oauth(site, grant_type="password", username=ALICE[0], password="nope-nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
    unknown = _oauth(site, grant_type="client_credentials")
    assert unknown.status_code == 400 and unknown.json()["error"] == "unsupported_grant_type"


# Login limits


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[AuthServer]:
    """A token server that tolerates 3 failed logins per account and 5 per address per minute."""
    env = auth_env("token", login_failures_per_account=3, login_failures_per_address=5, login_failure_window_seconds=60)
    server = AuthServer(tmp_path / "data", env=env).start()
    try:
        cli = PortsideCli(server)
        cli.create_user("carol", "carol-password")
        cli.create_user("dave", "dave-password")
        yield server
    finally:
        server.stop()


def _assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= 61


def test_too_many_failed_logins_throttle_the_account_then_the_address(limited: AuthServer) -> None:
    url = limited.url
    for _ in range(3):
        assert get_token(url, [], ("carol", "wrong-password")).status_code == 401
    # The right password no longer helps carol, by GET or by POST.
    _assert_throttled(get_token(url, [], ("carol", "carol-password")))
    post = httpx.post(
        f"{url}/token", data={"grant_type": "password", "username": "carol", "password": "carol-password"}
    )
    _assert_throttled(post)
    assert audit_events(limited, action="login-throttled", actor="user:carol")
    # Other accounts still log in, until the address has failed 5 times.
    assert get_token(url, [], ("dave", "dave-password")).status_code == 200
    for name in ("mallory", "trent"):
        assert get_token(url, [], (name, "wrong-password")).status_code == 401
    _assert_throttled(get_token(url, [], ("dave", "dave-password")))


# Key rotation


def test_rotating_the_signing_key_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(site: Site) -> None:
    url = site.manifest_url("alice/app")
    old = token_for(site.url, ["repository:alice/app:pull"], ALICE)
    old_kid = unverified_header(old)["kid"]
    keys = site.server.data_dir / "keys"
    before = len(list(keys.glob("*.pem")))

    # As an operator would, while the server runs.
    new_key = KeyRing(keys).rotate()
    assert new_key.kid != old_kid
    assert len(list(keys.glob("*.pem"))) == before + 1

    assert httpx.get(url, headers=bearer(old)).status_code == 200
    new = token_for(site.url, ["repository:alice/app:pull"], ALICE)
    assert unverified_header(new)["kid"] == new_key.kid
    assert httpx.get(url, headers=bearer(new)).status_code == 200
    assert httpx.get(url, headers=bearer(old)).status_code == 200
