"""The one family of typed errors. Each carries its HTTP status and an operator-facing message.

Every API surface renders these with its own envelope; none invents errors of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: where it is (dotted path) and what is allowed."""

    field: str
    message: str


class StreamfleetError(Exception):
    """Base of all expected errors. `message` is meant for the operator, not for a log."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, problems: Sequence[FieldProblem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)

    @property
    def headers(self) -> dict[str, str] | None:
        """HTTP headers every surface sends with this error."""
        return None


class InvalidInput(StreamfleetError):
    """The request is malformed or a value is out of range."""

    status = 422
    code = "invalid_input"


class NotAuthenticated(StreamfleetError):
    """No credential, or one that is unknown, expired or revoked."""

    status = 401
    code = "not_authenticated"

    def __init__(self, message: str = "missing or invalid credentials") -> None:
        super().__init__(message)


class Forbidden(StreamfleetError):
    """The credential is valid but may not do this."""

    status = 403
    code = "forbidden"


class NotFound(StreamfleetError):
    """Base of every missing resource."""

    status = 404
    code = "not_found"


class RestreamNotFound(NotFound):
    def __init__(self, restream_id: str) -> None:
        super().__init__(f"restream {restream_id} not found")


class ServerNotFound(NotFound):
    def __init__(self, server_id: str) -> None:
        super().__init__(f"server {server_id} not found")


class NodeNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"node {name} not found")


class MethodNotAllowed(StreamfleetError):
    """The path exists, but not with this HTTP method."""

    status = 405
    code = "method_not_allowed"


class Conflict(StreamfleetError):
    """The request clashes with existing state (a taken name, a busy port)."""

    status = 409
    code = "conflict"


class PreconditionFailed(StreamfleetError):
    """`If-Match` names a revision the resource no longer has: someone changed it since."""

    status = 412
    code = "precondition_failed"


class Held(Conflict):
    """Starting a restream (or one that follows it) that a hold keeps from running."""

    code = "held"


class NotSupportedYet(StreamfleetError):
    """A documented feature that this farm does not implement (yet)."""

    status = 422
    code = "not_supported"


class IllegalTransition(StreamfleetError):
    """A state change that the declared transition table does not allow."""

    status = 409
    code = "illegal_transition"

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"{kind} cannot go from {current} to {target}")


class BackendUnavailable(StreamfleetError):
    """PostgreSQL or Redis cannot be reached, or is too busy to take the request now."""

    status = 503
    code = "backend_unavailable"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str] | None:
        return None if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class TooManyRequests(StreamfleetError):
    """The caller went over its request rate."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)}


class TooLarge(StreamfleetError):
    """The request is bigger than the API takes (its body, its URL)."""

    status = 413
    code = "too_large"


class UriTooLong(TooLarge):
    status = 414
