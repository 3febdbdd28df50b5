"""Wire schemas of the five activity event types (the contract's input format).

These pydantic models are the single definition of what a valid event is; the simulator
shares them to produce valid traffic. Types are strict: ``"1"`` is not a bool, ``1`` is not a
string. Unknown fields are kept (``extra="allow"``), never rejected.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

EVENT_TYPES: tuple[str, ...] = ("login", "logout", "page_view", "button_click", "form_submit")

UserId = Annotated[str, StringConstraints(min_length=1)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    userId: UserId  # noqa: N815 - contract field names are camelCase


class LoginPayload(_Payload):
    ip: str
    device: str
    success: bool = True
    failureReason: str | None = None  # noqa: N815


class LogoutPayload(_Payload):
    ip: str
    duration: Annotated[float, Field(ge=0)] | None = None


class PageViewPayload(_Payload):
    page: str
    referrer: str | None = None
    device: str


class ButtonClickPayload(_Payload):
    buttonId: str  # noqa: N815
    page: str


class FormSubmitPayload(_Payload):
    formId: str  # noqa: N815
    fields: dict[str, str]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    eventId: str  # noqa: N815 - checked as a UUID by validation (its own reason code)
    timestamp: str  # parsed by validation (its own reason codes)


class LoginEvent(_Envelope):
    type: Literal["login"]
    payload: LoginPayload


class LogoutEvent(_Envelope):
    type: Literal["logout"]
    payload: LogoutPayload


class PageViewEvent(_Envelope):
    type: Literal["page_view"]
    payload: PageViewPayload


class ButtonClickEvent(_Envelope):
    type: Literal["button_click"]
    payload: ButtonClickPayload


class FormSubmitEvent(_Envelope):
    type: Literal["form_submit"]
    payload: FormSubmitPayload


WireEvent = Annotated[
    LoginEvent | LogoutEvent | PageViewEvent | ButtonClickEvent | FormSubmitEvent,
    Field(discriminator="type"),
]
WIRE_EVENT: TypeAdapter[WireEvent] = TypeAdapter(WireEvent)
"""Validates a parsed JSON object as one of the five event types."""

AWARE_DATETIME: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)
"""Parses an ISO-8601 timestamp that must carry a zone."""
