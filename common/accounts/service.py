"""Bootstrap of the default project and admin, logins and API keys. Never commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from common.accounts import security
from common.accounts.principal import Principal, Role
from common.accounts.throttle import LoginThrottle
from common.errors import NotAuthenticated
from common.ids import new_id
from common.models import ApiKey, Project, User

# `last_used_at` is recorded at this resolution, sparing a write on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def ensure_project(session: Session, name: str) -> Project:
    """The project called `name`, created if missing (safe under concurrent callers)."""
    session.execute(
        insert(Project)
        .values(id=new_id(), name=name)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return session.execute(select(Project).where(Project.name == name)).scalar_one()


def ensure_admin(session: Session, email: str, password: str) -> User:
    """The farm administrator from settings: created if missing, password kept in step."""
    session.execute(
        insert(User)
        .values(
            id=new_id(),
            email=email,
            password_hash=security.hash_password(password),
            is_admin=True,
            project_id=None,
        )
        .on_conflict_do_nothing(index_elements=["email"])
    )
    user = session.execute(select(User).where(User.email == email)).scalar_one()
    if security.needs_rehash(user.password_hash) or not security.verify_password(
        password, user.password_hash
    ):
        user.password_hash = security.hash_password(password)
    user.is_admin = True
    return user


def login(
    session: Session, throttle: LoginThrottle, email: str, password: str, *, address: str
) -> User:
    """The user of these credentials. Refused (TooManyRequests) while the account or the
    client's address has failed too often lately, whatever the password."""
    throttle.check(email, address)
    user = session.execute(select(User).where(User.email == email.strip())).scalar_one_or_none()
    if user is None or not security.verify_password(password, user.password_hash):
        throttle.failed(email, address)
        raise NotAuthenticated("wrong e-mail or password")
    throttle.succeeded(email)
    if security.needs_rehash(user.password_hash):  # an older scheme: upgraded now
        user.password_hash = security.hash_password(password)
    return user


_USER = select(User.is_admin, User.project_id).where(User.id == bindparam("user_id"))


def user_principal(session: Session, user_id: str) -> Principal | None:
    """The principal of a logged-in user who still exists: one prebuilt statement, as a
    key's (`_KEY`), on every request a login token makes."""
    row = session.connection().execute(_USER, {"user_id": user_id}).first()
    if row is None:
        return None
    role = Role.ADMIN if row.is_admin else Role.OPERATOR
    return Principal(subject=f"user:{user_id}", role=role, project_id=row.project_id)


def create_api_key(
    session: Session, name: str, *, project_id: str | None = None, role: Role = Role.ADMIN
) -> tuple[ApiKey, str]:
    """A new key row and its plaintext, which is never stored and cannot be shown again."""
    key = security.new_api_key()
    row = ApiKey(
        id=new_id(),
        name=name,
        prefix=key.prefix,
        secret_hash=key.secret_hash,
        project_id=project_id,
        role=role.value,
    )
    session.add(row)
    session.flush()
    return row, key.plaintext


# Built once, read as a plain row: every request with a key asks it.
_KEY = select(
    ApiKey.id,
    ApiKey.secret_hash,
    ApiKey.revoked_at,
    ApiKey.last_used_at,
    ApiKey.role,
    ApiKey.project_id,
).where(ApiKey.prefix == bindparam("prefix"))


def authenticate_key(session: Session, plaintext: str) -> Principal:
    """The principal of a valid, unrevoked key; records its use."""
    prefix = security.api_key_prefix(plaintext)
    row = session.connection().execute(_KEY, {"prefix": prefix}).first() if prefix else None
    if row is None:
        raise NotAuthenticated("unknown or revoked API key")
    key_id, secret_hash, revoked_at, last_used_at, role, project_id = row
    if revoked_at is not None or not security.hmac_equal(
        secret_hash, security.hash_api_key(plaintext)
    ):
        raise NotAuthenticated("unknown or revoked API key")
    now = datetime.now(UTC)
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    return Principal(subject=f"key:{prefix}", role=Role(role), project_id=project_id)
