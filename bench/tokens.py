"""The bench's own token issuer: one ES256 key, a self-signed certificate for it, long-lived JWTs.

Both servers verify the same kind of token, signed by the same key, without a token server:
Portside finds the key in its keys directory and looks it up by ``kid`` (the RFC 7638
thumbprint it computes itself); Distribution checks the ``x5c`` certificate against its
``rootcertbundle``, which holds that same self-signed certificate.
"""

from __future__ import annotations

import base64
import datetime
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portside.auth.tokens import key_id

#: ``iss`` and ``aud`` of every token; both servers are configured for exactly these.
ISSUER = "portside"
SERVICE = "portside"
SUBJECT = "bench"
#: Long enough for the slowest full run (3 rounds with waits for a quiet machine), with room.
TOKEN_LIFETIME = 7 * 24 * 3600
REPOSITORY_ACTIONS = ("pull", "push", "delete")


@dataclass(frozen=True)
class TokenKey:
    """A P-256 key pair, its self-signed certificate and Portside's id for it."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    kid: str

    @staticmethod
    def generate() -> TokenKey:
        """A fresh key and a certificate for it, valid from a day ago for 30 days."""
        private = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portside-bench token signer")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            # A CA certificate, so that Go accepts it as the root it is in Distribution's bundle.
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(private, hashes.SHA256())
        )
        return TokenKey(private, certificate, key_id(private.public_key()))

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, the form Portside's key ring reads."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def certificate_pem(self) -> bytes:
        """The certificate as PEM, for Distribution's ``rootcertbundle``."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def token(self, repositories: Iterable[str], catalog: bool = False) -> str:
        """A JWT granting pull, push and delete on ``repositories`` (and the catalog if asked)."""
        issued = int(time.time())
        access: list[dict[str, object]] = [
            {"type": "repository", "name": name, "actions": list(REPOSITORY_ACTIONS)}
            for name in dict.fromkeys(repositories)  # ordered and without duplicates
        ]
        if catalog:
            access.append({"type": "registry", "name": "catalog", "actions": ["*"]})
        claims = {
            "iss": ISSUER,
            "aud": SERVICE,
            "sub": SUBJECT,
            "exp": issued + TOKEN_LIFETIME,
            # A little in the past: the servers' clocks are this machine's, but leeway costs nothing.
            "nbf": issued - 10,
            "iat": issued,
            "jti": secrets.token_urlsafe(16),
            "access": access,
        }
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        headers = {"kid": self.kid, "x5c": [base64.b64encode(der).decode()]}
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers=headers)

    def headers(self, repositories: Iterable[str], catalog: bool = False) -> dict[str, str]:
        """The ``Authorization`` header carrying a fresh :meth:`token`."""
        return {"Authorization": f"Bearer {self.token(repositories, catalog)}"}
