"""Wire schemas of the five activity event types (the contract's input format).

These pydantic schemas are the single definition of what a valid event is; the simulator shares
them to produce valid traffic. They are ``TypedDict``s validated by pydantic (strict, extra fields
allowed) rather than ``BaseModel``s: validation then yields the plain dict the pipeline keeps as
the payload, with no model objects to build, which is ~2x faster on the hot path.
Types are strict: ``"1"`` is not a bool, ``1`` is not a string. Unknown fields are kept.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, TypeAdapter
from typing_extensions import TypedDict

EVENT_TYPES: tuple[str, ...] = ("login", "logout", "page_view", "button_click", "form_submit")

_STRICT_OPEN = ConfigDict(extra="allow", strict=True)
UserId = Annotated[str, StringConstraints(min_length=1)]


class LoginPayload(TypedDict):
    """A login attempt; ``success`` defaults to true."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    userId: UserId
    ip: str
    device: str
    success: NotRequired[bool]
    failureReason: NotRequired[str | None]


class LogoutPayload(TypedDict):
    """A logout; ``duration`` is the session length in seconds the client measured."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    userId: UserId
    ip: str
    duration: NotRequired[Annotated[float, Field(ge=0)] | None]


class PageViewPayload(TypedDict):
    """A page view."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    userId: UserId
    page: str
    referrer: NotRequired[str | None]
    device: str


class ButtonClickPayload(TypedDict):
    """A click on a button of a page."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    userId: UserId
    buttonId: str
    page: str


class FormSubmitPayload(TypedDict):
    """A submitted form: field name to value, all strings."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    userId: UserId
    formId: str
    fields: dict[str, str]


class LoginEvent(TypedDict):
    """Envelope of a login event."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    eventId: str
    timestamp: str
    type: Literal["login"]
    payload: LoginPayload


class LogoutEvent(TypedDict):
    """Envelope of a logout event."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    eventId: str
    timestamp: str
    type: Literal["logout"]
    payload: LogoutPayload


class PageViewEvent(TypedDict):
    """Envelope of a page_view event."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    eventId: str
    timestamp: str
    type: Literal["page_view"]
    payload: PageViewPayload


class ButtonClickEvent(TypedDict):
    """Envelope of a button_click event."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    eventId: str
    timestamp: str
    type: Literal["button_click"]
    payload: ButtonClickPayload


class FormSubmitEvent(TypedDict):
    """Envelope of a form_submit event."""

    __pydantic_config__ = _STRICT_OPEN  # type: ignore[misc]
    eventId: str
    timestamp: str
    type: Literal["form_submit"]
    payload: FormSubmitPayload


WireEvent = Annotated[
    LoginEvent | LogoutEvent | PageViewEvent | ButtonClickEvent | FormSubmitEvent,
    Field(discriminator="type"),
]
WIRE_EVENT: TypeAdapter[WireEvent] = TypeAdapter(WireEvent)
"""Validates one event (JSON bytes or a parsed object) as one of the five types."""

AWARE_DATETIME: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)
"""Parses an ISO-8601 timestamp that must carry a zone (for clients such as the simulator)."""
