"""Settings that would break a promise are refused when the process starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.config import Settings


def test_a_worker_must_be_able_to_fence_before_its_lease_expires() -> None:
    assert Settings(lease_ttl_s=5, fence_margin_s=1, lease_renew_interval_s=1).fence_margin_s == 1
    with pytest.raises(ValidationError, match="must be at least STREAMFLEET_LEASE_RENEW"):
        Settings(lease_ttl_s=2, fence_margin_s=1.5, lease_renew_interval_s=1)
    with pytest.raises(ValidationError, match="fence_margin_s"):
        Settings(fence_margin_s=0)
