"""Checks of what a client sends for a definition: URLs and ids, and pydantic's refusals as
the farm's own (`InvalidInput`, naming each field)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ValidationError

from common.definitions.kinds import MAX_URL_LENGTH
from common.errors import FieldProblem, InvalidInput
from common.ids import is_object_id

M = TypeVar("M", bound=BaseModel)


_DISABLED = {"", "disabled", "disable", "none", "null"}


def build(model: type[M], **fields: Any) -> M:
    """`model(**fields)` from parts a request gave: refused as invalid input naming the
    fields, rather than failing as an internal error."""
    try:
        return model(**fields)
    except ValidationError as error:
        problems = [
            FieldProblem(
                ".".join(str(part) for part in e["loc"]) or "body",
                str(e["msg"]).removeprefix("Value error, "),
            )
            for e in error.errors()
        ]
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
        raise InvalidInput(f"invalid request: {summary}", problems) from error


def split_url(url: str, field: str) -> SplitResult:
    """`urlsplit`, with a malformed URL (a bad IPv6 host, say) refused naming the field."""
    try:
        return urlsplit(url)
    except ValueError as error:
        problem = FieldProblem(field, f"not a valid URL ({error})")
        raise InvalidInput(f"{field}: {problem.message}", [problem]) from error


def blank_to_none(value: Any) -> Any:
    """Clients send "" or "Disabled" for a setting they leave unset."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _DISABLED):
        return None
    return value


def allowed_values(enum: type[StrEnum]) -> str:
    """ "a, b, c": for error messages that tell the operator what would be accepted."""
    return ", ".join(member.value for member in enum)


def check_url(url: str, schemes: frozenset[str], field: str) -> str:
    """Refuse URLs FFmpeg would read as an option, or whose scheme the type does not allow."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"{field} is {len(url)} characters long; at most {MAX_URL_LENGTH}")
    if url.startswith("-"):
        raise ValueError(f"{field} must be a URL, not an option")
    scheme = urlsplit(url).scheme.lower()
    if scheme not in schemes:
        raise ValueError(
            f"{field} scheme must be one of {', '.join(sorted(schemes))} (got {scheme or 'none'!r})"
        )
    if any(ch in url for ch in "\n\r\t ") or "|" in url:
        raise ValueError(f"{field} must not contain spaces, line breaks or '|'")
    return url


def check_entity_id(value: Any) -> Any:
    """The id of an input or an output: the 24-hex form the farm gives them. It names a
    directory on the node (HLS, DASH) and a path of its playback URL, so nothing else — a
    `../`, a slash — may pass."""
    if value is None:
        return None
    if not isinstance(value, str) or not is_object_id(value.strip().lower()):
        raise ValueError(
            "id must be a 24-character hexadecimal id, as the farm assigns (leave it out to "
            "get one)"
        )
    return value.strip().lower()
