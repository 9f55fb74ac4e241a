"""A sliding-window request limiter in Redis: it holds across every API replica.

Each caller has a sorted set of the moments (Redis's own clock, the same for every replica)
of its accepted requests; a request is accepted when fewer than `limit` of them fall within
the last `window_s` seconds. The check and the
record are one Lua script, so concurrent requests cannot both take the last place. Refused
requests are not recorded: a client that backs off gets through again.
"""

from __future__ import annotations

import uuid

import redis

_ADMIT = """
local key, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  return 0
end
redis.call('ZADD', key, now, ARGV[3])
redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
return 1
"""


class RateLimiter:
    def __init__(self, client: redis.Redis, *, limit: int, window_s: float, prefix: str) -> None:
        self.limit = limit
        self.window_s = window_s
        self.prefix = prefix
        self._admit = client.register_script(_ADMIT)

    def admit(self, caller: str) -> bool:
        """Record a request of `caller` and say whether it is within the limit."""
        accepted = self._admit(
            keys=[f"{self.prefix}:{caller}"],
            args=[self.window_s, self.limit, uuid.uuid4().hex],
        )
        return bool(accepted)
