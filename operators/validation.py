"""Raw Kafka message bytes → a valid ``Event`` or a ``Rejection`` with a reason code. Never raises.

Order of checks (the first failure names the reason): empty → too large → UTF-8 → JSON → object →
``type`` → schema (missing / wrong type / empty userId / too long / value out of range) → storable →
eventId → timestamp → future skew. Storage limits are checked here too (PostgreSQL cannot store NUL
characters in text or jsonb), so that nothing accepted can later fail a sink write.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from pydantic import TypeAdapter, ValidationError

from operators.records import Event, Reason, Rejection, Replay, Source
from operators.schemas import BOUNDED_FIELDS, EVENT_TYPES, LIMIT_SETTINGS, FieldLimits, wire_event

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ENVELOPE_FIELDS = frozenset({"eventId", "type", "timestamp", "payload"})
_TYPES = frozenset(EVENT_TYPES)
_DETAIL_MAX = 300
# Payload values that need no look inside for a non-finite float (exact types: bool is an int).
_SCALARS = frozenset({str, int, bool, type(None)})
_WRONG_TYPE_ERRORS = frozenset(
    {
        "string_type",
        "bool_type",
        "float_type",
        "int_type",
        "dict_type",
        "model_type",
        "model_attributes_type",
        "finite_number",
    }
)


@dataclass(frozen=True, slots=True)
class Limits:
    """What validation enforces (from settings): sizes, skew, and the schema's field lengths."""

    max_event_bytes: int = 65536
    max_future_skew: timedelta = timedelta(seconds=300)
    fields: FieldLimits = field(default_factory=FieldLimits)  # the flow passes RTEP_MAX_*_CHARS
    schema: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # built once per Limits (the hot path must not look the adapter up per message)
        object.__setattr__(self, "schema", wire_event(self.fields))


class _Invalid(Exception):
    """Internal: the message fails with this reason; turned into a Rejection at the boundary."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail[:_DETAIL_MAX]


class Defect(NamedTuple):
    """Why a message is not a valid event: its reason code and a human-readable detail."""

    reason: Reason
    detail: str

    def rejection(
        self, raw: bytes | None, source: Source, received_at: datetime, replay: Replay | None = None
    ) -> Rejection:
        """The Rejection record of the message (original bytes, where it came from, why)."""
        return Rejection(self.reason, self.detail, raw or b"", source, received_at, replay)


def validate_message(
    raw: bytes | None, source: Source, received_at: datetime, now: datetime, limits: Limits
) -> Event | Rejection:
    """Classify one message. ``now`` is injected wall time (for the future-skew check)."""
    result = check_message(raw, received_at, now, limits)
    return result if isinstance(result, Event) else result.rejection(raw, source, received_at)


def check_message(
    raw: bytes | None, received_at: datetime, now: datetime, limits: Limits
) -> Event | Defect:
    """``validate_message`` without the Rejection record: the dataflow builds that (and the
    message's Source) only for the few messages that fail."""
    try:
        return _to_event(raw, received_at, now, limits)
    except _Invalid as bad:
        return Defect(bad.reason, bad.detail)
    except Exception as exc:  # the contract: validation never raises, whatever the input
        return Defect(Reason.INVALID_JSON, f"unclassifiable message ({type(exc).__name__})")


def _to_event(raw: bytes | None, received_at: datetime, now: datetime, limits: Limits) -> Event:
    if not raw:
        raise _Invalid(Reason.EMPTY_MESSAGE, "empty message (or tombstone): no event")
    if len(raw) > limits.max_event_bytes:
        raise _Invalid(
            Reason.TOO_LARGE,
            f"message is {len(raw)} bytes; the limit is {limits.max_event_bytes} "
            "(RTEP_MAX_EVENT_BYTES)",
        )
    try:
        obj: dict[str, Any] = limits.schema.validate_json(raw)
    except ValidationError:
        _raise_first_defect(raw, limits.schema)
    if b"\\u0000" in raw and _has_nul(obj):  # the bytes test is a cheap pre-filter
        raise _Invalid(Reason.INVALID_VALUE, "NUL character (\\u0000) in a string: not storable")
    if _has_non_finite(obj):
        raise _Invalid(
            Reason.INVALID_JSON, "NaN, Infinity or a number beyond the float range: not JSON"
        )
    event_id: str = obj["eventId"]
    if len(event_id) != 36 or not _UUID.fullmatch(event_id):
        raise _Invalid(
            Reason.INVALID_EVENT_ID, f"eventId {event_id[:40]!r} is not a UUID (8-4-4-4-12 hex)"
        )
    ts = _parse_timestamp(obj["timestamp"])
    if ts - now > limits.max_future_skew:
        raise _Invalid(
            Reason.FUTURE_TIMESTAMP,
            f"timestamp is {(ts - now).total_seconds():.0f}s in the future; the limit is "
            f"{limits.max_future_skew.total_seconds():.0f}s (RTEP_MAX_FUTURE_SKEW_SECONDS)",
        )
    payload: dict[str, Any] = obj["payload"]
    if len(obj) > len(_ENVELOPE_FIELDS):  # unknown top-level fields are kept, in the payload
        payload["_envelope"] = {k: v for k, v in obj.items() if k not in _ENVELOPE_FIELDS}
    get = payload.get
    # positional (event_id, type, ts, user_id, payload, received_at, ip, device, page): ~0.3 us
    # cheaper per event than keywords
    return Event(
        event_id.lower(), obj["type"], ts, payload["userId"], payload, received_at,
        get("ip"), get("device"), get("page"),
    )  # fmt: skip


def _parse_timestamp(stamp: str) -> datetime:
    try:
        ts = datetime.fromisoformat(stamp)
    except ValueError:
        raise _Invalid(
            Reason.INVALID_TIMESTAMP, f"timestamp {stamp[:40]!r} is not ISO-8601"
        ) from None
    if ts.tzinfo is UTC:  # "…Z" or "+00:00", most of them: already what the checks below give
        return ts
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise _Invalid(
            Reason.INVALID_TIMESTAMP, f"timestamp {stamp[:40]!r} has no zone (add Z or +00:00)"
        )
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before datetime.min in UTC
        raise _Invalid(
            Reason.INVALID_TIMESTAMP, f"timestamp {stamp[:40]!r} is out of range in UTC"
        ) from None


def _walk(value: object) -> Iterator[object]:
    """Every key and value of a parsed JSON document (iterative: no recursion limit to hit)."""
    stack = [value]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _has_nul(obj: object) -> bool:
    """A real NUL character in a key or string (not the six characters ``\\u0000``)."""
    return any(isinstance(v, str) and "\x00" in v for v in _walk(obj))


def _has_non_finite(obj: dict[str, Any]) -> bool:
    """A NaN or infinite float anywhere (PostgreSQL jsonb and JSON itself cannot hold it).

    pydantic parses NaN/Infinity tokens and out-of-range numbers (1e999) to such floats. Checked
    on the parsed object, exactly, in ~0.3 us for a typical event: the schema makes the other
    envelope fields strings, so only the payload's values are looked at, and only containers
    and floats among them (scanning the raw bytes with a regex cost ~3 us).
    """
    scalars = _SCALARS
    for value in obj["payload"].values():
        if type(value) not in scalars and _non_finite_in(value):
            return True
    return len(obj) > len(_ENVELOPE_FIELDS) and _non_finite_in(obj)


def _non_finite_in(value: object) -> bool:
    """A NaN or infinite float in ``value`` or anything it contains (iterative)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            stack.extend(item.values())  # keys are strings
        elif type(item) is list:
            stack.extend(item)
        elif type(item) is float and not math.isfinite(item):
            return True
    return False


def _raise_first_defect(raw: bytes, schema: TypeAdapter[Any]) -> None:
    """Slow path for invalid messages: find the first defect, for a precise reason code."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise _Invalid(
                Reason.INVALID_UTF8, f"not valid UTF-8: {uexc.reason} at byte {uexc.start}"
            ) from None
        raise _Invalid(Reason.INVALID_JSON, f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Invalid(
            Reason.NOT_AN_OBJECT, f"top level is a JSON {_json_kind(obj)}, not an object"
        )
    kind = obj.get("type")
    if kind is None:
        raise _Invalid(Reason.MISSING_FIELD, "missing field 'type'")
    if not isinstance(kind, str):
        raise _Invalid(Reason.WRONG_TYPE, f"'type' must be a string, got {_json_kind(kind)}")
    if kind not in _TYPES:
        raise _Invalid(
            Reason.UNKNOWN_TYPE,
            f"unknown type {kind[:40]!r}; expected one of {', '.join(EVENT_TYPES)}",
        )
    try:
        schema.validate_python(obj)
    except ValidationError as exc:
        raise _schema_defect(exc) from None
    # pydantic's JSON parser refused what orjson accepts (e.g. a number out of float range)
    raise _Invalid(Reason.INVALID_JSON, "JSON with values that cannot be represented exactly")


def _schema_defect(exc: ValidationError) -> _Invalid:
    """Map pydantic's first error to a contract reason code and a readable detail."""
    err = exc.errors(include_url=False, include_input=True)[0]
    loc = ".".join(str(p) for p in err["loc"][1:])  # drop the union tag
    kind = err["type"]
    if kind == "missing":
        return _Invalid(Reason.MISSING_FIELD, f"missing field {loc!r}")
    if kind == "string_too_short" and loc == "payload.userId":
        return _Invalid(Reason.EMPTY_USER_ID, "payload.userId is empty")
    if kind == "string_too_long":
        return _too_long(err["loc"][1:], len(err.get("input", "")), err["ctx"]["max_length"])
    if kind in _WRONG_TYPE_ERRORS:
        return _Invalid(Reason.WRONG_TYPE, f"{loc}: {err['msg']}")
    return _Invalid(Reason.INVALID_VALUE, f"{loc}: {err['msg']}")


def _too_long(loc: tuple[int | str, ...], length: int, limit: int) -> _Invalid:
    """``too_long``, naming the field, its length, the limit and the setting that raises it."""
    if loc[:2] == ("payload", "fields"):
        key = str(loc[2])
        is_name = loc[-1] == "[key]"
        where = (
            f"a payload.fields name ({key[:20]!r}…)" if is_name else f"payload.fields[{key[:40]!r}]"
        )
        setting = LIMIT_SETTINGS["form_field_name" if is_name else "form_field_value"]
    else:
        where = ".".join(map(str, loc))
        setting = LIMIT_SETTINGS[BOUNDED_FIELDS.get(str(loc[-1]), "text")]
    return _Invalid(
        Reason.TOO_LONG,
        f"{where} is {length} characters; the limit is {limit} ({setting})",
    )


def _json_kind(value: object) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)
