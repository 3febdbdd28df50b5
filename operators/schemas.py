"""Wire schemas of the five activity event types (the contract's input format).

These pydantic schemas are the single definition of what a valid event is; the simulator shares
them to produce valid traffic. They are ``TypedDict``s validated by pydantic (strict, extra fields
allowed) rather than ``BaseModel``s: validation then yields the plain dict the pipeline keeps as
the payload, with no model objects to build, which is ~2x faster on the hot path.
Types are strict: ``"1"`` is not a bool, ``1`` is not a string. Unknown fields are kept.

Every identifier and free-text field has a maximum length (``FieldLimits``, from settings),
checked by pydantic in the same pass: one hostile value (a 2,700-character userId, a 60 KB
User-Agent) must be refused here, with a reason naming the field and the limit, rather than
fail a PostgreSQL index later or cost ua-parser 100 ms. The schemas are therefore built per set
of limits (``wire_event``); ``WIRE_EVENT`` is the one for the defaults.

No ``from __future__ import annotations`` here: the classes are built inside ``wire_event`` and
their annotations must be the objects themselves, not strings pydantic would have to resolve.
"""

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Annotated, Any, Literal, NotRequired

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, TypeAdapter
from typing_extensions import TypedDict

EVENT_TYPES: tuple[str, ...] = ("login", "logout", "page_view", "button_click", "form_submit")

_STRICT_OPEN = ConfigDict(extra="allow", strict=True)


@dataclass(frozen=True, slots=True)
class FieldLimits:
    """Maximum length, in characters, of each bounded field (settings ``RTEP_MAX_*_CHARS``).

    Defaults come from what real clients send, with room: a userId is a UUID (36), a provider
    id (``auth0|…``, < 64) or an e-mail address (at most 254 by RFC 5321); pages and referrers are
    URLs (browsers send referrers of at most 4,096 characters; sitemaps cap URLs at 2,048); a
    User-Agent is 100-300 characters, the longest real ones (toolbars, in-app browsers) under
    1,000; an IP address is at most 45 (IPv6 with an IPv4 tail) plus a zone id.
    ``user_id`` must stay below 600: four bytes a character at most, its btree index entries
    (``events_user_ts_idx``, ``sessions_user_idx``, ``alerts_subject_idx``) must fit in 2,704 bytes.
    """

    user_id: int = 256
    identifier: int = 128  # buttonId, formId
    url: int = 4096  # page, referrer
    device: int = 1024
    ip: int = 64
    text: int = 1024  # failureReason
    form_field_name: int = 256
    form_field_value: int = 16384


LIMIT_SETTINGS: dict[str, str] = {
    "user_id": "RTEP_MAX_USER_ID_CHARS",
    "identifier": "RTEP_MAX_IDENTIFIER_CHARS",
    "url": "RTEP_MAX_URL_CHARS",
    "device": "RTEP_MAX_DEVICE_CHARS",
    "ip": "RTEP_MAX_IP_CHARS",
    "text": "RTEP_MAX_TEXT_CHARS",
    "form_field_name": "RTEP_MAX_FORM_FIELD_NAME_CHARS",
    "form_field_value": "RTEP_MAX_FORM_FIELD_VALUE_CHARS",
}
"""The environment variable of each ``FieldLimits`` field (named in rejection details)."""
assert set(LIMIT_SETTINGS) == {f.name for f in fields(FieldLimits)}

BOUNDED_FIELDS: dict[str, str] = {
    "userId": "user_id",
    "buttonId": "identifier",
    "formId": "identifier",
    "page": "url",
    "referrer": "url",
    "device": "device",
    "ip": "ip",
    "failureReason": "text",
}
"""Payload field → the ``FieldLimits`` entry bounding it (form ``fields`` are bounded apart)."""


def _bounded(chars: int, min_length: int = 0) -> Any:
    return Annotated[str, StringConstraints(min_length=min_length, max_length=chars)]


@lru_cache(maxsize=8)
def wire_event(limits: FieldLimits) -> TypeAdapter[Any]:
    """The adapter validating one event (JSON bytes or a parsed object) under ``limits``."""
    UserId = _bounded(limits.user_id, min_length=1)
    Ident = _bounded(limits.identifier)
    Url = _bounded(limits.url)
    Device = _bounded(limits.device)
    Ip = _bounded(limits.ip)
    Text = _bounded(limits.text)
    FieldName = _bounded(limits.form_field_name)
    FieldValue = _bounded(limits.form_field_value)

    class LoginPayload(TypedDict):
        """A login attempt; ``success`` defaults to true."""

        __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
        userId: UserId  # type: ignore[valid-type]
        ip: Ip  # type: ignore[valid-type]
        device: Device  # type: ignore[valid-type]
        success: NotRequired[bool]
        failureReason: NotRequired[Text | None]  # type: ignore[valid-type]

    class LogoutPayload(TypedDict):
        """A logout; ``duration`` is the session length in seconds the client measured."""

        __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
        userId: UserId  # type: ignore[valid-type]
        ip: Ip  # type: ignore[valid-type]
        duration: NotRequired[Annotated[float, Field(ge=0)] | None]

    class PageViewPayload(TypedDict):
        """A page view."""

        __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
        userId: UserId  # type: ignore[valid-type]
        page: Url  # type: ignore[valid-type]
        referrer: NotRequired[Url | None]  # type: ignore[valid-type]
        device: Device  # type: ignore[valid-type]

    class ButtonClickPayload(TypedDict):
        """A click on a button of a page."""

        __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
        userId: UserId  # type: ignore[valid-type]
        buttonId: Ident  # type: ignore[valid-type]
        page: Url  # type: ignore[valid-type]

    class FormSubmitPayload(TypedDict):
        """A submitted form: field name to value, all strings."""

        __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
        userId: UserId  # type: ignore[valid-type]
        formId: Ident  # type: ignore[valid-type]
        fields: dict[FieldName, FieldValue]  # type: ignore[valid-type]

    def envelope(kind: str, body: Any) -> Any:
        """The envelope TypedDict of one event type (same shape for all five)."""

        class Envelope(TypedDict):
            __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
            eventId: str
            timestamp: str
            type: Literal[kind]  # type: ignore[valid-type]
            payload: body

        Envelope.__name__ = Envelope.__qualname__ = f"{kind}_event"
        return Envelope

    payloads = (LoginPayload, LogoutPayload, PageViewPayload, ButtonClickPayload, FormSubmitPayload)
    events = tuple(envelope(k, p) for k, p in zip(EVENT_TYPES, payloads, strict=True))
    union: Any = events[0] | events[1] | events[2] | events[3] | events[4]
    return TypeAdapter(Annotated[union, Field(discriminator="type")])


WIRE_EVENT: TypeAdapter[Any] = wire_event(FieldLimits())
"""Validates one event (JSON bytes or a parsed object) as one of the five types, default limits."""

AWARE_DATETIME: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)
"""Parses an ISO-8601 timestamp that must carry a zone (for clients such as the simulator)."""
