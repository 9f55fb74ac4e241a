"""Who is calling: API keys and login tokens, as each surface carries them."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import redis
from fastapi import Depends, Header

from api.deps import ApiState, SessionDep, StateDep
from common.accounts import projects, revocations, security
from common.accounts import service as accounts
from common.accounts.principal import Principal, Role
from common.errors import Forbidden, NotAuthenticated, TooManyRequests
from common.ratelimit import RateLimiter

# The credential headers are the OpenAPI document's security schemes (`api.openapi`), not
# parameters of each operation.
Credential = Annotated[str | None, Header(include_in_schema=False)]


def bearer_principal(
    session: SessionDep,
    state: StateDep,
    authorization: Credential = None,
) -> Principal:
    """The caller of the native API: `Authorization: Bearer <api key>`, or a login token
    (from /api/auth/login) in its place."""
    if not authorization:
        raise NotAuthenticated("missing Authorization: Bearer <api key or login token>")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise NotAuthenticated("Authorization must be `Bearer <api key or login token>`")
    return within_rate(state, _key_or_token(session, state, credential.strip()))


def within_rate(state: ApiState, principal: Principal) -> Principal:
    """The caller, if within its requests a second (STREAMFLEET_API_REQUESTS_PER_S, counted in
    Redis so that it holds across replicas). While Redis is out of reach nothing is counted:
    reads go on from PostgreSQL through an outage."""
    rate = state.settings.api_requests_per_s
    if not rate:
        return principal
    limiter = RateLimiter(state.redis, limit=rate, window_s=1.0, prefix="ratelimit:api")
    try:
        admitted = limiter.admit(principal.subject)
    except redis.RedisError:
        return principal
    if not admitted:
        raise TooManyRequests(f"too many requests: at most {rate} a second per credential")
    return principal


def token_principal(
    session: SessionDep,
    state: StateDep,
    x_access_token: Credential = None,
) -> Principal:
    """The caller of the Callaba surface: a login token in `x-access-token` — or an API key
    there, which is how a project's credential uses this surface."""
    if not x_access_token:
        raise NotAuthenticated("missing x-access-token: log in at /api/auth/login")
    return within_rate(state, _key_or_token(session, state, x_access_token))


def project_principal(
    project_id: str,
    session: SessionDep,
    state: StateDep,
    authorization: Credential = None,
) -> Principal:
    """The caller of a surface scoped by a project in the path (`/api/v1/{project_id}`): a
    key of that project, or a farm-wide credential acting in it, in `Authorization` as is or
    after `Bearer `. A key of another project is forbidden, whether that project exists or not.
    """
    if not authorization or not authorization.strip():
        raise NotAuthenticated("missing Authorization: <api key>")
    scheme, _, rest = authorization.strip().partition(" ")
    credential = rest.strip() if scheme.lower() == "bearer" else authorization.strip()
    principal = within_rate(state, _key_or_token(session, state, credential))
    if principal.farm_wide:
        projects.visible(session, principal, project_id)
        return replace(principal, project_id=project_id)
    if principal.project_id != project_id:
        raise Forbidden("this key belongs to another project")
    return principal


def require_metrics_reader(state: ApiState, authorization: str | None) -> None:
    """`/metrics`: the farm's metrics token, or a farm-wide admin's API key, as a Bearer."""
    scheme, _, credential = (authorization or "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise NotAuthenticated("/metrics needs Authorization: Bearer <metrics token or admin key>")
    token = state.settings.metrics_token
    if token is not None and security.hmac_equal(credential, token.get_secret_value()):
        return
    with state.db.transaction() as session:
        principal = accounts.authenticate_key(session, credential)
    if not (principal.farm_wide and principal.role is Role.ADMIN):
        raise Forbidden("/metrics is for the metrics token or a farm-wide admin key")


def _key_or_token(session: SessionDep, state: StateDep, credential: str) -> Principal:
    if security.api_key_prefix(credential) is not None:
        return accounts.authenticate_key(session, credential)
    claims = login_claims(state, credential)
    principal = accounts.user_principal(session, claims.user_id)
    if principal is None:
        raise NotAuthenticated("invalid or expired token: log in again at /api/auth/login")
    return principal


def login_claims(state: ApiState, token: str) -> security.TokenClaims:
    """The claims of a login token that is valid, unexpired and not revoked."""
    secret = state.settings.jwt_secret
    claims = security.read_token(token, secret.get_secret_value()) if secret else None
    if claims is None or revocations.revoked(state.redis, claims):
        raise NotAuthenticated(
            "invalid or expired token (or revoked): log in again at /api/auth/login"
        )
    return claims


BearerPrincipal = Annotated[Principal, Depends(bearer_principal)]
TokenPrincipal = Annotated[Principal, Depends(token_principal)]
ProjectPrincipal = Annotated[Principal, Depends(project_principal)]
