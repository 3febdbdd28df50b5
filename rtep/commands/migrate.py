"""Apply pending ``sql/NNN_*.sql`` migrations, once each, recording them in ``rtep.schema_migrations``.

Run as ``python -m rtep.commands.migrate`` (``make migrate``). Idempotent: a second run applies nothing.
Concurrent runners serialise on an advisory lock.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import psycopg

from rtep.commands.cli import command_parser
from rtep.core.logs import get_logger
from rtep.core.settings import get_settings, settings_help

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_ID = 0x7274_6570  # "rtep"
log = get_logger("rtep.commands.migrate")


def migration_files(sql_dir: Path = SQL_DIR) -> list[tuple[int, Path]]:
    """The numbered migration files in order; refuses duplicate numbers or stray names."""
    found: dict[int, Path] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: migration files must be named NNN_snake_case.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(
                f"two migrations numbered {version:03d}: {found[version].name}, {path.name}"
            )
        found[version] = path
    return sorted(found.items())


def migrate(dsn: str, sql_dir: Path = SQL_DIR) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied now."""
    applied_now: list[int] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS rtep")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS rtep.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM rtep.schema_migrations")}
            for version, path in migration_files(sql_dir):
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text().encode())
                    conn.execute(
                        "INSERT INTO rtep.schema_migrations (version, name) VALUES (%s, %s)",
                        (version, path.name),
                    )
                log.info("migration applied", version=version, name=path.name)
                applied_now.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now


def main(argv: list[str] | None = None, prog: str = "python -m rtep.commands.migrate") -> int:
    """Entry point of ``make migrate`` and ``rtep migrate``."""
    command_parser(
        prog,
        __doc__,
        settings_help("database_url"),
        f"{prog}",
        f"RTEP_DATABASE_URL=postgresql://rtep:PASSWORD@db:5432/rtep {prog}",
    ).parse_args(argv)
    dsn = get_settings().database_url.get_secret_value()
    try:
        applied = migrate(dsn)
    except psycopg.OperationalError as exc:
        log.error(
            "cannot reach PostgreSQL: check RTEP_DATABASE_URL and that the server runs",
            error=str(exc).splitlines()[0] if str(exc) else repr(exc),
        )
        return 2
    log.info("database up to date", applied=applied)
    return 0


if __name__ == "__main__":
    sys.exit(main())
