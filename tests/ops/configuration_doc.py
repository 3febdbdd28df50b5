"""Render ``docs/configuration.md``: one table row per field of ``rtep.core.settings.Settings``.

Regenerate after changing the settings: ``.venv/bin/python -m tests.ops.configuration_doc``.
A test fails while the committed file differs from this rendering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from rtep.core.settings import Settings, env_name

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

HEADER = """# Configuration

Every setting of rtep is an environment variable, read once per process by
`rtep.core.settings.get_settings()` (pydantic-settings). Defaults work on a development machine
(PostgreSQL, Redis and Kafka on 127.0.0.1). Variables marked *secret* are never logged.

In the container image `RTEP_METRICS_HOST=0.0.0.0` and `RTEP_RECOVERY_DIR=/var/lib/rtep/recovery`
(a volume); `ops/compose.yaml` sets the broker, database and Redis URLs from `ops/.env`.

<!-- Generated from rtep/core/settings.py by `.venv/bin/python -m tests.ops.configuration_doc`; do not edit. -->

| Variable | Type | Default | Bounds | Description |
|---|---|---|---|---|
"""

_BOUNDS = (
    (annotated_types.Gt, "> {}", "gt"),
    (annotated_types.Ge, "≥ {}", "ge"),
    (annotated_types.Lt, "< {}", "lt"),
    (annotated_types.Le, "≤ {}", "le"),
)


def _type(field: FieldInfo) -> str:
    annotation = field.annotation
    if annotation is SecretStr:
        return "string (secret)"
    if getattr(annotation, "__origin__", None) is dict:
        return "JSON object"
    names: dict[object, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(annotation, str(annotation))


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def _bounds(field: FieldInfo) -> str:
    found = [
        template.format(getattr(item, attr))
        for item in field.metadata
        for kind, template, attr in _BOUNDS
        if isinstance(item, kind)
    ]
    return ", ".join(found)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rows() -> list[str]:
    """One markdown row per settings field, in declaration order."""
    return [
        f"| `{env_name(name)}` | {_type(field)} | {_default(field)} | {_bounds(field)} "
        f"| {_cell(field.description or '')} |"
        for name, field in Settings.model_fields.items()
    ]


def render() -> str:
    """The whole ``docs/configuration.md``."""
    return HEADER + "\n".join(rows()) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}")
