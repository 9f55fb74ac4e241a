"""Who is calling: API keys (`Authorization: Bearer`) and login tokens (`x-access-token`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from api.deps import SessionDep, StateDep
from common.accounts import security
from common.accounts import service as accounts
from common.accounts.principal import Principal
from common.errors import NotAuthenticated


def bearer_principal(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller of the native API: an API key as `Authorization: Bearer <key>`."""
    if not authorization:
        raise NotAuthenticated("missing Authorization: Bearer <api key>")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise NotAuthenticated("Authorization must be `Bearer <api key>`")
    return accounts.authenticate_key(session, credential.strip())


def token_principal(
    session: SessionDep,
    state: StateDep,
    x_access_token: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller of the Callaba surface: a login token in `x-access-token` — or an API key
    there, which is how a project's credential uses this surface."""
    if not x_access_token:
        raise NotAuthenticated("missing x-access-token: log in at /api/auth/login")
    if security.api_key_prefix(x_access_token) is not None:
        return accounts.authenticate_key(session, x_access_token)
    secret = state.settings.jwt_secret
    user_id = security.read_token(x_access_token, secret.get_secret_value()) if secret else None
    user = accounts.user_by_id(session, user_id) if user_id else None
    if user is None:
        raise NotAuthenticated("invalid or expired token: log in again at /api/auth/login")
    return accounts.principal_of_user(user)


BearerPrincipal = Annotated[Principal, Depends(bearer_principal)]
TokenPrincipal = Annotated[Principal, Depends(token_principal)]
