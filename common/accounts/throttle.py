"""Failed logins, counted in Redis so that the count holds across every API replica.

Each account (by e-mail) and each client address has a sorted set of the moments of its failed
logins (Redis's own clock). Once `per_account` failures of an account, or `per_address` of an
address, fall within the last `window_s` seconds, every login of it is refused — the right
password too — until the oldest of them leaves the window. A successful login clears its
account's count. Thirty wrong passwords in a second used to be answered 401 each, and the
right one worked straight after.
"""

from __future__ import annotations

import math
import uuid

import redis

from common.errors import TooManyRequests

PREFIX = "streamfleet:login-failures"
# KEYS: the sets to look at. ARGV[1]: window (s); ARGV[2..]: the limit of each key. Returns
# the seconds until every key is under its limit again (0: none is at it).
_BLOCKED_FOR = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local limit = tonumber(ARGV[i + 1])
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
return tostring(wait)
"""
# KEYS: the sets to add to. ARGV[1]: window (s), ARGV[2]: a unique member.
_RECORD = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 0
"""


class LoginThrottle:
    def __init__(
        self, client: redis.Redis, *, per_account: int, per_address: int, window_s: float
    ) -> None:
        self.per_account = per_account
        self.per_address = per_address
        self.window_s = window_s
        self.client = client
        self._blocked_for = client.register_script(_BLOCKED_FOR)
        self._record = client.register_script(_RECORD)

    @staticmethod
    def _keys(email: str, address: str) -> list[str]:
        return [f"{PREFIX}:account:{email.strip().lower()}", f"{PREFIX}:address:{address}"]

    def check(self, email: str, address: str) -> None:
        """Raise TooManyRequests while the account or the address is at its limit."""
        keys = self._keys(email, address)
        limits = [self.per_account, self.per_address]
        wait_s = float(self._blocked_for(keys=keys, args=[self.window_s, *limits]))
        if wait_s > 0:
            raise TooManyRequests(
                f"too many failed logins for this account or from this address: try again in "
                f"{math.ceil(wait_s)} s",
                retry_after_s=math.ceil(wait_s),
            )

    def failed(self, email: str, address: str) -> None:
        self._record(keys=self._keys(email, address), args=[self.window_s, uuid.uuid4().hex])

    def succeeded(self, email: str) -> None:
        self.client.delete(self._keys(email, "")[0])
