"""Creates a client may send again (`Idempotency-Key`): the first one makes the resource, a
repeat within `KEPT` answers with what the first made, and the same key with another request
is refused. Kept in PostgreSQL with the create itself, so a create that fails or rolls back
leaves the key unused; of two concurrent requests with one key, the second waits for the
first's transaction (the key's row) and then answers as a repeat."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from common.db import database_now
from common.errors import Conflict, FieldProblem, InvalidInput
from common.models.idempotency import IdempotencyKey

KEPT = timedelta(hours=24)
HEADER = "Idempotency-Key"


def fingerprint(request: bytes) -> str:
    return hashlib.sha256(request).hexdigest()


def check_key(key: str) -> str:
    if not (1 <= len(key) <= 255) or not key.isprintable():
        message = "1 to 255 printable characters (a UUID, say)"
        raise InvalidInput(f"{HEADER}: {message}", [FieldProblem(HEADER, message)])
    return key


def claim(session: Session, subject: str, key: str, request_fingerprint: str) -> str | None:
    """None if this is the key's first use (go on and `made` what it makes); else the id of
    what its first use made. Conflict if it was used for another request."""
    inserted = session.execute(
        insert(IdempotencyKey)
        .values(subject=subject, key=check_key(key), fingerprint=request_fingerprint)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if inserted is not None:
        return None
    found = session.execute(
        select(IdempotencyKey)
        .where(IdempotencyKey.subject == subject, IdempotencyKey.key == key)
        .with_for_update()
    ).scalar_one()
    if found.created_at < database_now(session) - KEPT:  # forgotten: a first use again
        found.fingerprint, found.resource_id = request_fingerprint, None
        found.created_at = database_now(session)
        return None
    if found.fingerprint != request_fingerprint:
        raise Conflict(f"{HEADER} {key!r} was used for another request; use a new key")
    if found.resource_id is None:  # its first use made nothing it could remember
        raise Conflict(f"{HEADER} {key!r} was used by a request that made nothing")
    return found.resource_id


def made(session: Session, subject: str, key: str, resource_id: str) -> None:
    found = session.get(IdempotencyKey, (subject, key))
    assert found is not None  # claimed in this transaction
    found.resource_id = resource_id
