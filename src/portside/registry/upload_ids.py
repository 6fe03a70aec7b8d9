"""Signed upload session ids: an open, empty session needs no database row.

Most blobs are pushed as ``POST`` then ``PUT``; a row made by the ``POST`` costs a write
transaction and a log fsync per blob, only to be deleted by the ``PUT``. Instead, the ``POST``
hands out an id that carries its creation time and an HMAC of its nonce, that time and the
repository, under a key every worker and node reads from the database. A request bearing such an
id, with no row, is an open session with nothing written yet. The first write makes the row
(upload expiry walks rows to free what was written); finishing or cancelling marks it closed,
and it stays until it expires with the id. CNCF Distribution signs its upload state the same way.

Ids of 32 hex digits (before signing) are sessions with a row, as they always were.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

# 16 bytes of nonce, the creation time in seconds (8 hex digits) and 8 bytes of HMAC-SHA256.
_SIGNED_ID = re.compile(r"^([0-9a-f]{32})([0-9a-f]{8})([0-9a-f]{16})$")
SESSION_ID = re.compile(r"^[0-9a-f]{32}(?:[0-9a-f]{24})?$")
KEY_BYTES = 32


def new_key() -> str:
    """A fresh signing key, as stored."""
    return secrets.token_hex(KEY_BYTES)


class UploadIds:
    """Makes and checks signed upload ids under one key."""

    def __init__(self, key_hex: str) -> None:
        self._key = bytes.fromhex(key_hex)

    def new(self, repository: str, now: float | None = None) -> str:
        """A new id for a session of ``repository``, created ``now``."""
        nonce = secrets.token_hex(16)
        created = f"{int(time.time() if now is None else now):08x}"
        return nonce + created + self._mac(nonce, created, repository)

    def created(self, upload_id: str, repository: str) -> float | None:
        """When the id was made, if this key signed it for ``repository``; else ``None``."""
        match = _SIGNED_ID.match(upload_id)
        if match is None:
            return None
        nonce, created, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(nonce, created, repository)):
            return None
        return float(int(created, 16))

    def _mac(self, nonce: str, created: str, repository: str) -> str:
        message = f"{nonce}\0{created}\0{repository}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:16]
