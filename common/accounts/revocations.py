"""Revoked login tokens, in Redis (every API replica sees a revocation at once).

A token is revoked by its id (`POST /api/auth/logout`), until it would have expired anyway;
every token of a user is revoked by a moment (`streamfleet admin revoke-tokens`): those issued
before it are refused for as long as a token lives. While Redis is out of reach nothing can be
read: tokens are then accepted as their signature says (the API goes on reading PostgreSQL
through a Redis outage) and the refusal resumes with Redis.
"""

from __future__ import annotations

import logging
import time

import redis

from common.accounts.security import TokenClaims

log = logging.getLogger(__name__)
REVOKED_PREFIX = "streamfleet:revoked-token:"
USER_PREFIX = "streamfleet:tokens-revoked-before:"


def revoke(client: redis.Redis, claims: TokenClaims) -> None:
    """This token, until it expires."""
    ttl_s = max(1, claims.expires_at - int(time.time()))
    client.set(_key(claims), 1, ex=ttl_s)


def revoke_all(client: redis.Redis, user_id: str, token_ttl_s: int) -> None:
    """Every token of `user_id` issued until now, to the millisecond (kept as long as such a
    token could live): a login after it gets a token that works."""
    client.set(USER_PREFIX + user_id, time.time_ns() // 1_000_000, ex=token_ttl_s + 1)


def revoked(client: redis.Redis, claims: TokenClaims) -> bool:
    """One round trip."""
    try:
        by_token, before = client.mget([_key(claims), USER_PREFIX + claims.user_id])
    except redis.RedisError as error:
        log.warning("revocations unreadable (%s): accepting a signed token", error)
        return False
    return by_token is not None or (before is not None and claims.issued_ms < int(before))


def _key(claims: TokenClaims) -> str:
    return REVOKED_PREFIX + (claims.token_id or f"{claims.user_id}:{claims.issued_ms}")
