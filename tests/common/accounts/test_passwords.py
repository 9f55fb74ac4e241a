"""Password hashes: Argon2id now; scrypt hashes of earlier versions still log in, and are made
again with Argon2id at that login."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
import redis
from sqlalchemy import select

from common.accounts import security
from common.accounts.service import login
from common.accounts.throttle import LoginThrottle
from common.db import Database
from common.ids import new_id
from common.models import User


@pytest.fixture
def throttle(redis_client: redis.Redis) -> LoginThrottle:
    return LoginThrottle(redis_client, per_account=10, per_address=10, window_s=60)


def scrypt_hash(password: str) -> str:
    """As this farm stored passwords before (scrypt, N = 2^14)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return "$".join(["scrypt", "16384", "8", "1", b64(salt), b64(digest)])


def test_argon2id_hashes() -> None:
    stored = security.hash_password("correct horse")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert security.verify_password("correct horse", stored)
    assert not security.verify_password("wrong horse", stored)
    assert not security.needs_rehash(stored)
    salt, digest = stored.split("$")[-2:]
    assert security.needs_rehash(f"$argon2id$v=19$m=16384,t=2,p=1${salt}${digest}")
    assert not security.verify_password("x", "not a hash")


def test_an_old_scrypt_hash_logs_in_and_is_upgraded(db: Database, throttle: LoginThrottle) -> None:
    old = scrypt_hash("an old password")
    assert security.verify_password("an old password", old) and security.needs_rehash(old)
    with db.transaction() as session:
        session.add(User(id=new_id(), email="old@example.com", password_hash=old, is_admin=False))
    with db.transaction() as session:
        login(session, throttle, "old@example.com", "an old password", address="192.0.2.1")
    with db.transaction() as session:
        stored = session.execute(
            select(User.password_hash).where(User.email == "old@example.com")
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert security.verify_password("an old password", stored)
