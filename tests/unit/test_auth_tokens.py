"""Registry bearer tokens: ES256 JWTs, key ids, the key ring, and every way a token must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from portside.auth.scopes import Scope
from portside.auth.tokens import InvalidToken, KeyRing, TokenClaims, TokenIssuer, key_id

PULL_APP = [Scope("repository", "acme/app", frozenset({"pull"}))]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def encode_json(document: dict[str, object]) -> str:
    return b64(json.dumps(document, separators=(",", ":")).encode())


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    return KeyRing(tmp_path / "keys")


@pytest.fixture
def issuer(keys: KeyRing) -> TokenIssuer:
    return TokenIssuer(keys, "portside", "registry.test", 300)


def claims_for(issuer: TokenIssuer, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer.issuer,
        "sub": "alice",
        "aud": issuer.service,
        "exp": now + 300,
        "nbf": now - 1,
        "iat": now,
        "access": [scope.as_claim() for scope in PULL_APP],
    }
    claims.update(overrides)
    return claims


def sign(keys: KeyRing, claims: dict[str, object], **header: object) -> str:
    key = keys.signing_key
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid, **header})


# Key ids


def test_key_id_is_the_rfc7638_thumbprint() -> None:
    # The P-256 key of RFC 7517 appendix A.1; its thumbprint input is the JWK's required
    # members in lexicographic order without whitespace (RFC 7638 section 3.2).
    x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
    y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(unb64(x), "big"), int.from_bytes(unb64(y), "big"), ec.SECP256R1()
    ).public_key()
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}'.encode()
    assert key_id(public) == b64(hashlib.sha256(canonical).digest())


def test_key_id_agrees_with_an_independent_jose_library() -> None:
    jwk = pytest.importorskip("joserfc.jwk")
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id(private.public_key()) == jwk.ECKey.import_key(pem).thumbprint()


def test_key_id_is_stable_across_reloads_and_key_rings(tmp_path: Path) -> None:
    first = KeyRing(tmp_path / "keys")
    kid = first.signing_key.kid
    assert len(kid) == 43 and "=" not in kid
    first.reload()
    assert first.signing_key.kid == kid
    assert KeyRing(tmp_path / "keys").signing_key.kid == kid
    assert key_id(first.signing_key.public_key) == kid


# The key ring


def test_the_first_key_is_created_private_to_its_owner(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    files = list((tmp_path / "keys").glob("*.pem"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert list((tmp_path / "keys").iterdir()) == files  # no temporary file left behind
    assert ring.verifying_key(ring.signing_key.kid) is not None


def test_rotation_signs_with_the_new_key_and_still_verifies_with_the_old(keys: KeyRing) -> None:
    old = keys.signing_key
    new = keys.rotate()
    assert new.kid != old.kid
    assert keys.signing_key.kid == new.kid
    assert keys.verifying_key(old.kid) is not None
    assert keys.verifying_key(new.kid) is not None
    assert keys.verifying_key("no-such-kid") is None


def test_a_key_rotated_by_another_process_is_picked_up(tmp_path: Path) -> None:
    server = KeyRing(tmp_path / "keys")
    issuer = TokenIssuer(server, "portside", "registry.test", 300)
    old_token = issuer.issue("alice", PULL_APP)[0]

    operator = KeyRing(tmp_path / "keys")
    new = operator.rotate()

    new_token = issuer.issue("alice", PULL_APP)[0]
    assert jwt.get_unverified_header(new_token)["kid"] == new.kid
    assert issuer.verify(old_token).subject == "alice"
    assert issuer.verify(new_token).subject == "alice"
    # Tokens the operator's process signs verify here too.
    elsewhere = TokenIssuer(operator, "portside", "registry.test", 300).issue("bob", PULL_APP)[0]
    assert issuer.verify(elsewhere).subject == "bob"


# Issue and verify


def test_issue_then_verify_round_trip(issuer: TokenIssuer, keys: KeyRing) -> None:
    now = time.time()
    token, lifetime, issued = issuer.issue("alice", PULL_APP, now=now)
    assert lifetime == 300 and issued == int(now)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == keys.signing_key.kid
    payload = json.loads(unb64(token.split(".")[1]))
    assert payload["iss"] == "portside" and payload["aud"] == "registry.test" and payload["sub"] == "alice"
    assert payload["exp"] == int(now) + 300 and payload["nbf"] <= payload["iat"] == int(now)
    assert payload["jti"]
    assert payload["access"] == [{"type": "repository", "name": "acme/app", "actions": ["pull"]}]
    assert issuer.verify(token) == TokenClaims("alice", PULL_APP, int(now) + 300)


def test_two_tokens_for_the_same_request_differ(issuer: TokenIssuer) -> None:
    assert issuer.issue("alice", PULL_APP)[0] != issuer.issue("alice", PULL_APP)[0]


def test_anonymous_tokens_and_empty_access(issuer: TokenIssuer) -> None:
    claims = issuer.verify(issuer.issue("", [])[0])
    assert claims.subject == "" and claims.access == []


def test_malformed_access_entries_are_dropped(issuer: TokenIssuer, keys: KeyRing) -> None:
    token = sign(
        keys,
        claims_for(
            issuer,
            access=[
                "repository:acme/app:push",
                {"type": "repository", "actions": ["push"]},
                {"type": 7, "name": "acme/app", "actions": ["push"]},
                {"type": "repository", "name": "acme/app", "actions": None},
                {"type": "repository", "name": "acme/app", "actions": ["pull"]},
            ],
        ),
    )
    assert issuer.verify(token).access == [
        Scope("repository", "acme/app", frozenset()),
        Scope("repository", "acme/app", frozenset({"pull"})),
    ]


# Every way a token must be refused


def test_alg_none_is_refused(issuer: TokenIssuer, keys: KeyRing) -> None:
    for alg in ("none", "None", "NONE"):
        token = f"{encode_json({'alg': alg, 'typ': 'JWT', 'kid': keys.signing_key.kid})}."
        token += f"{encode_json(claims_for(issuer))}."
        with pytest.raises(InvalidToken):
            issuer.verify(token)


def test_hs256_signed_with_the_public_key_is_refused(issuer: TokenIssuer, keys: KeyRing) -> None:
    public_pem = keys.signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public_pem, public_pem.strip()):
        signing_input = (
            f"{encode_json({'alg': 'HS256', 'kid': keys.signing_key.kid})}.{encode_json(claims_for(issuer))}"
        )
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(InvalidToken):
            issuer.verify(f"{signing_input}.{b64(signature)}")


def test_other_asymmetric_algorithms_are_refused(issuer: TokenIssuer, keys: KeyRing) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    token = jwt.encode(claims_for(issuer), p384, algorithm="ES384", headers={"kid": keys.signing_key.kid})
    with pytest.raises(InvalidToken, match="ES256"):
        issuer.verify(token)


def test_a_tampered_payload_is_refused(issuer: TokenIssuer) -> None:
    token = issuer.issue("bob", PULL_APP)[0]
    header, payload, signature = token.split(".")
    claims = json.loads(unb64(payload))
    claims["access"][0]["actions"] = ["pull", "push", "delete", "*"]
    with pytest.raises(InvalidToken):
        issuer.verify(f"{header}.{encode_json(claims)}.{signature}")
    claims = json.loads(unb64(payload))
    claims["sub"] = "root"
    with pytest.raises(InvalidToken):
        issuer.verify(f"{header}.{encode_json(claims)}.{signature}")


def test_a_tampered_header_is_refused(issuer: TokenIssuer, keys: KeyRing) -> None:
    old = keys.signing_key.kid
    keys.rotate()
    token = issuer.issue("bob", PULL_APP)[0]
    _, payload, signature = token.split(".")
    swapped = f"{encode_json({'alg': 'ES256', 'typ': 'JWT', 'kid': old})}.{payload}.{signature}"
    with pytest.raises(InvalidToken):
        issuer.verify(swapped)


def test_an_expired_token_is_refused(issuer: TokenIssuer) -> None:
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(issuer.issue("alice", PULL_APP, now=time.time() - 300 - 30)[0])


def test_a_token_that_is_not_yet_valid_is_refused(issuer: TokenIssuer) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(issuer.issue("alice", PULL_APP, now=time.time() + 60)[0])


def test_small_clock_skew_is_tolerated(issuer: TokenIssuer) -> None:
    assert issuer.verify(issuer.issue("alice", PULL_APP, now=time.time() + 2)[0]).subject == "alice"


def test_a_token_for_another_audience_is_refused(keys: KeyRing, issuer: TokenIssuer) -> None:
    other = TokenIssuer(keys, "portside", "another.registry", 300)
    with pytest.raises(InvalidToken):
        issuer.verify(other.issue("alice", PULL_APP)[0])
    with pytest.raises(InvalidToken):
        issuer.verify(sign(keys, claims_for(issuer, aud=["another.registry"])))


def test_an_audience_list_naming_this_service_is_accepted(keys: KeyRing, issuer: TokenIssuer) -> None:
    # RFC 7519: "aud" may be an array; this service being in it is enough.
    assert issuer.verify(sign(keys, claims_for(issuer, aud=["another.registry", issuer.service]))).subject == "alice"


def test_a_token_from_another_issuer_is_refused(keys: KeyRing, issuer: TokenIssuer) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(TokenIssuer(keys, "someone-else", issuer.service, 300).issue("alice", PULL_APP)[0])


def test_a_token_signed_by_an_unknown_key_is_refused(tmp_path: Path, issuer: TokenIssuer, keys: KeyRing) -> None:
    stranger = KeyRing(tmp_path / "other-keys")
    with pytest.raises(InvalidToken, match="unknown key"):
        issuer.verify(TokenIssuer(stranger, issuer.issuer, issuer.service, 300).issue("alice", PULL_APP)[0])
    # Claiming a known kid does not help a signature made with another key.
    forged = jwt.encode(
        claims_for(issuer), stranger.signing_key.private_key, algorithm="ES256", headers={"kid": keys.signing_key.kid}
    )
    with pytest.raises(InvalidToken):
        issuer.verify(forged)


def test_a_token_without_a_kid_is_refused(issuer: TokenIssuer, keys: KeyRing) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(jwt.encode(claims_for(issuer), keys.signing_key.private_key, algorithm="ES256"))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat", "iss", "aud", "sub"])
def test_a_token_missing_a_required_claim_is_refused(issuer: TokenIssuer, keys: KeyRing, claim: str) -> None:
    claims = claims_for(issuer)
    del claims[claim]
    with pytest.raises(InvalidToken):
        issuer.verify(sign(keys, claims))


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJFUzI1NiJ9.e30.", "€uro.token.here"],
)
def test_garbage_is_refused(issuer: TokenIssuer, token: str) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(token)


# The verification cache


def test_a_verified_token_is_served_from_the_cache(issuer: TokenIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    token = issuer.issue("alice", PULL_APP)[0]
    first = issuer.verify(token)

    def fail(_token: str) -> TokenClaims:
        raise AssertionError("verified again")

    monkeypatch.setattr(issuer, "_verify", fail)
    assert issuer.verify(token) == first


def test_the_cache_honours_expiry(issuer: TokenIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    token = issuer.issue("alice", PULL_APP)[0]
    claims = issuer.verify(token)
    checked: list[str] = []

    def refuse(candidate: str) -> TokenClaims:
        checked.append(candidate)
        raise InvalidToken("expired")

    monkeypatch.setattr(issuer, "_verify", refuse)
    monkeypatch.setattr(time, "time", lambda: claims.expires_at + 1.0)
    with pytest.raises(InvalidToken):
        issuer.verify(token)
    assert checked == [token]


def test_a_refused_token_is_never_cached(issuer: TokenIssuer) -> None:
    token = issuer.issue("alice", PULL_APP, now=time.time() + 60)[0]
    for _ in range(2):
        with pytest.raises(InvalidToken):
            issuer.verify(token)


def test_the_cache_is_bounded(keys: KeyRing) -> None:
    issuer = TokenIssuer(keys, "portside", "registry.test", 300, cache_size=2)
    issued = [issuer.issue(f"user{i}", PULL_APP)[0] for i in range(4)]
    for token in issued:
        issuer.verify(token)
    assert list(issuer._verified) == issued[2:]
