"""Password hashes, API key secrets and login tokens. Pure apart from randomness."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "sf"
JWT_ALGORITHM = "HS256"


# Argon2id with RFC 9106's second recommended setting (64 MiB, 3 passes, 4 lanes): above
# OWASP's minimum. Hashes made with other parameters, or with scrypt (this farm's earlier
# scheme), still verify and are made again at the next login (`needs_rehash`).
_ARGON2 = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)


def hash_password(password: str) -> str:
    """Argon2id, in its standard encoding (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`)."""
    return _ARGON2.hash(password)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith("$argon2"):
        try:
            return _ARGON2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    return _verify_scrypt(password, stored)


def needs_rehash(stored: str) -> bool:
    """Made by an older scheme or with other parameters: hash again once the password is known."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _ARGON2.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    """The earlier scheme, `scrypt$n$r$p$salt$hash`: verified, never made any more."""
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


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    token_id: str  # `jti`: what a revocation names
    issued_ms: int  # when, in milliseconds (a revocation of every token compares it)
    expires_at: int


def issue_token(user_id: str, secret: str, ttl_s: int) -> str:
    now_ms = time.time_ns() // 1_000_000
    now = now_ms // 1000
    claims = {
        "id": user_id,
        "jti": secrets.token_hex(12),
        "iat": now,
        "iat_ms": now_ms,
        "exp": now + ttl_s,
    }
    return jwt.encode(claims, secret, JWT_ALGORITHM)


def read_token(token: str, secret: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token; None otherwise (revocations aside:
    `common.accounts.revocations`)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM])
    except jwt.PyJWTError:
        return None
    user_id, token_id = claims.get("id"), claims.get("jti")
    if not isinstance(user_id, str):
        return None
    return TokenClaims(
        user_id=user_id,
        # Tokens from before revocations carry no id: revoked with their user's tokens only.
        token_id=token_id if isinstance(token_id, str) else "",
        issued_ms=int(claims.get("iat_ms", int(claims.get("iat", 0)) * 1000)),
        expires_at=int(claims["exp"]),
    )


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def hmac_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(a.encode(), b.encode())
