"""Password hashes, API key secrets and login tokens. Pure apart from randomness."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

KEY_PREFIX = "sf"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
JWT_ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    """scrypt with a random salt, as `scrypt$n$r$p$salt$hash`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(candidate, _unb64(digest))


@dataclass(frozen=True)
class NewKey:
    """A freshly made API key: `plaintext` is shown once; only `secret_hash` is stored."""

    plaintext: str
    prefix: str
    secret_hash: str


def new_api_key() -> NewKey:
    """`sf_<12 hex>_<secret>`: the prefix is recognisable in logs and finds the stored row."""
    prefix = f"{KEY_PREFIX}_{secrets.token_hex(6)}"
    plaintext = f"{prefix}_{secrets.token_urlsafe(24)}"
    return NewKey(plaintext=plaintext, prefix=prefix, secret_hash=hash_api_key(plaintext))


def api_key_prefix(plaintext: str) -> str | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    return f"{parts[0]}_{parts[1]}"


def hash_api_key(plaintext: str) -> str:
    # Keys are 192-bit random: a fast hash is enough and keeps every request cheap.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_token(user_id: str, secret: str, ttl_s: int) -> str:
    now = int(time.time())
    return jwt.encode({"id": user_id, "iat": now, "exp": now + ttl_s}, secret, JWT_ALGORITHM)


def read_token(token: str, secret: str) -> str | None:
    """The user id in a valid, unexpired token; None otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM])
    except jwt.PyJWTError:
        return None
    user_id = claims.get("id")
    return user_id if isinstance(user_id, str) else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def hmac_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(a.encode(), b.encode())
