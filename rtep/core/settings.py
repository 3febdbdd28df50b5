"""The one typed settings object: every knob of rtep, read from ``RTEP_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from operators.schemas import FieldLimits


class Settings(BaseSettings):
    """All configuration. Each field is read from ``RTEP_<FIELD_NAME>``; defaults work on a dev machine."""

    model_config = SettingsConfigDict(env_prefix="RTEP_", extra="ignore", frozen=True)

    # --- Kafka -------------------------------------------------------------------------------
    kafka_brokers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers (comma list)."
    )
    events_topic: str = Field("activity.events", description="Input topic of raw events.")
    dlq_topic: str = Field("activity.dlq", description="Dead-letter topic: rejected raw bytes.")
    alerts_topic: str = Field("activity.alerts", description="Topic for detection alerts.")
    topic_partitions: int = Field(4, ge=1, description="Partitions used when rtep creates topics.")
    kafka_batch_size: int = Field(
        5000, ge=1, description="Max messages per source batch (5000: +45% throughput vs 1000)."
    )
    kafka_extra_config: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Extra librdkafka settings (JSON object), e.g. SASL; they override the input's "
            "defaults auto.offset.reset=earliest, queued.max.messages.kbytes=16384."
        ),
    )

    # --- Stores ------------------------------------------------------------------------------
    database_url: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:5432/rtep"),
        description="PostgreSQL URL (libpq form). Treated as a secret: never logged.",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL. Treated as a secret."
    )
    redis_prefix: str = Field("rtep:", description="Prefix of every Redis key (contract: rtep:).")
    redis_counts_ttl_seconds: int = Field(
        2 * 86400, ge=60, description="TTL of rtep:counts:{type}:{minute} keys."
    )
    redis_write_interval_ms: int = Field(
        250,
        ge=0,
        description="Least time between two Redis writes: each carries more keys (0: no wait).",
    )
    redis_recent_alerts: int = Field(1000, ge=1, description="Cap of the rtep:alerts:recent list.")
    redis_key_ttl_seconds: int = Field(
        7 * 86400,
        ge=60,
        description=(
            "TTL of rtep:user:{userId}, rtep:sessions:active and rtep:alerts:recent, renewed at "
            "each write: Redis holds only what was active this recently (memory bound)."
        ),
    )
    pg_statement_timeout_ms: int = Field(
        30_000,
        ge=100,
        description="statement_timeout of every sink connection: a hung write is retried, not waited on.",
    )
    pg_lock_timeout_ms: int = Field(
        5_000,
        ge=10,
        description="lock_timeout of every sink connection: a lock held elsewhere is retried, not waited on.",
    )

    # --- Validation --------------------------------------------------------------------------
    max_future_skew_seconds: int = Field(300, ge=0, description="Reject events this far ahead.")
    max_event_bytes: int = Field(65536, ge=64, description="Reject messages larger than this.")
    max_user_id_chars: int = Field(
        256,
        ge=1,
        le=600,
        description=(
            "Longest payload.userId (too_long beyond): UUIDs, provider ids and e-mail addresses "
            "(254) fit; at most 600 so its index entries fit PostgreSQL's 2,704-byte btree limit."
        ),
    )
    max_identifier_chars: int = Field(
        128, ge=1, le=2000, description="Longest buttonId and formId (too_long beyond)."
    )
    max_url_chars: int = Field(
        4096,
        ge=1,
        description="Longest page and referrer (too_long beyond; browsers cap referrers at 4,096).",
    )
    max_device_chars: int = Field(
        1024,
        ge=1,
        description="Longest device / User-Agent (too_long beyond; real ones are under 1,000).",
    )
    max_ip_chars: int = Field(64, ge=45, description="Longest ip string (too_long beyond).")
    max_text_chars: int = Field(
        1024, ge=1, description="Longest free-text field, login failureReason (too_long beyond)."
    )
    max_form_field_name_chars: int = Field(
        256, ge=1, description="Longest name in a form_submit's fields (too_long beyond)."
    )
    max_form_field_value_chars: int = Field(
        16384, ge=1, description="Longest value in a form_submit's fields (too_long beyond)."
    )

    # --- IP geolocation (README "Geolocation") -----------------------------------------------
    geoip_enabled: bool = Field(
        True,
        description=(
            "Locate each event's IP. false: no location fields, impossible_travel and "
            "new_country_login never fire, and no geolocation data is loaded (~120 MB less)."
        ),
    )
    geoip_country_db: str = Field(
        "",
        description=(
            "MaxMind GeoLite2/GeoIP2 Country .mmdb (country of each event's IP). Empty, and no "
            "other RTEP_GEOIP_*_DB set: the embedded geoip2fast country and AS data."
        ),
    )
    geoip_city_db: str = Field(
        "",
        description=(
            "MaxMind GeoLite2/GeoIP2 City .mmdb: country, city, latitude and longitude (used "
            "instead of RTEP_GEOIP_COUNTRY_DB when both are set)."
        ),
    )
    geoip_asn_db: str = Field(
        "", description="MaxMind GeoLite2/GeoIP2 ASN .mmdb: AS number and organisation."
    )
    geoip_cache_size: int = Field(
        65536,
        ge=1,
        description="IP addresses whose location is kept in memory, per process (~300 B each).",
    )

    # --- Stateful analytics ------------------------------------------------------------------
    session_gap_seconds: int = Field(1800, ge=1, description="Inactivity that ends a session.")
    session_max_seconds: int = Field(86400, ge=60, description="Cap on one session's length.")
    session_update_interval_seconds: float = Field(
        5.0, ge=0, description="Open sessions are re-written at most this often (0: every batch)."
    )
    allowed_lateness_seconds: int = Field(
        60, ge=0, description="How late (event time) an event may arrive and still be placed."
    )
    dedup_horizon_seconds: int = Field(
        3600, ge=1, description="How long (event time) an eventId is remembered for de-duplication."
    )
    dedup_max_ids: int = Field(
        1_000_000, ge=1000, description="Most eventIds remembered for de-duplication (~250 B each)."
    )
    rollup_retention_seconds: int = Field(
        300,
        ge=0,
        description="How long (event time) a closed minute rollup still takes late events.",
    )
    new_device_max_devices: int = Field(
        16, ge=1, description="new_device_login: devices remembered per user."
    )
    new_device_history_days: int = Field(
        30, ge=1, description="new_device_login: a user's device history is forgotten after this."
    )
    partition_idle_seconds: float = Field(
        10.0,
        ge=0,
        description=(
            "A Kafka partition caught up and quiet this long stops holding back the steps where "
            "partitions meet (credential stuffing, rollup totals); one with a backlog always counts."
        ),
    )
    ip_shards: int = Field(
        8,
        ge=1,
        description="Keys of the credential-stuffing step (IPs hashed), spread over workers.",
    )
    failed_login_burst_count: int = Field(5, ge=1, description="failed_login_burst: failures.")
    failed_login_burst_window_seconds: int = Field(
        60, ge=1, description="failed_login_burst: window (seconds) the failures must fall in."
    )
    credential_stuffing_users: int = Field(10, ge=2, description="credential_stuffing: users/IP.")
    credential_stuffing_window_seconds: int = Field(
        300, ge=1, description="credential_stuffing: window (seconds) the failing users fall in."
    )
    brute_force_success_window_seconds: int = Field(
        300, ge=1, description="brute_force_success: success this soon after a burst."
    )
    event_rate_limit: int = Field(
        120, ge=1, description="abnormal_event_rate: events for one user within the window."
    )
    event_rate_window_seconds: int = Field(
        60, ge=1, description="abnormal_event_rate: window (seconds) of the event count."
    )
    new_country_max_countries: int = Field(
        32, ge=1, description="new_country_login: countries remembered per user."
    )
    new_country_history_days: int = Field(
        90, ge=1, description="new_country_login: a user's country history is forgotten after this."
    )
    travel_max_kmh: float = Field(
        805.0,
        gt=0,
        description=(
            "impossible_travel: two logins of a user whose great-circle distance over the time "
            "between them is faster than this (km/h) alert (with coordinates: a city database)."
        ),
    )
    travel_min_km: float = Field(
        500.0,
        ge=0,
        description=(
            "impossible_travel: logins closer than this (km) never alert (neighbouring cities "
            "across a border, IP geolocation error)."
        ),
    )
    travel_country_window_seconds: int = Field(
        1800,
        ge=1,
        description=(
            "impossible_travel without coordinates: logins from two countries this close in "
            "time alert."
        ),
    )
    spray_min_users: int = Field(
        5, ge=2, description="password_spraying: users with failed logins from one IP."
    )
    spray_min_attempts: int = Field(
        15, ge=2, description="password_spraying: failed logins from one IP within the window."
    )
    spray_window_seconds: int = Field(
        3600, ge=1, description="password_spraying: window (seconds) of the failed logins."
    )
    spray_min_per_user: int = Field(
        3,
        ge=2,
        description=(
            "password_spraying: most users must have at least this many failed logins "
            "(credential_stuffing's victims have fewer)."
        ),
    )
    spray_max_per_user: int = Field(
        8,
        ge=2,
        description=(
            "password_spraying: users with more failed logins than this do not count towards "
            "'most users' (a burst on one account is failed_login_burst)."
        ),
    )

    # --- Reliability -------------------------------------------------------------------------
    sink_max_pending: int = Field(
        20_000,
        ge=1,
        description="Items a sink may hold for its writer thread before the flow waits for it.",
    )
    sink_max_retry_seconds: float = Field(
        300.0, gt=0, description="Give up (exit non-zero) after a backend is down this long."
    )
    breaker_reject_share: float = Field(
        0.5, gt=0, le=1, description="Stop the flow when this share of a window is rejected."
    )
    breaker_window: int = Field(
        2000, ge=10, description="Messages per breaker window (0 < share <= 1)."
    )

    recovery_dir: str = Field(
        ".run/recovery", description="Bytewax recovery directory (Kafka offsets + state live here)."
    )
    recovery_partitions: int = Field(1, ge=1, description="Partitions of a new recovery store.")
    snapshot_interval_seconds: int = Field(5, ge=1, description="Seconds between snapshots (-s).")
    recovery_backup_seconds: int = Field(
        60, ge=0, description="How long old snapshots are kept (-b), for lagging workers."
    )

    # --- Metrics -----------------------------------------------------------------------------
    metrics_port: int = Field(9108, ge=0, le=65535, description="Prometheus /metrics port.")
    metrics_host: str = Field("127.0.0.1", description="Bind address of /metrics.")
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")

    def field_limits(self) -> FieldLimits:
        """The schema's field length limits (``RTEP_MAX_*_CHARS``)."""
        return FieldLimits(
            user_id=self.max_user_id_chars,
            identifier=self.max_identifier_chars,
            url=self.max_url_chars,
            device=self.max_device_chars,
            ip=self.max_ip_chars,
            text=self.max_text_chars,
            form_field_name=self.max_form_field_name_chars,
            form_field_value=self.max_form_field_value_chars,
        )


def env_name(field: str) -> str:
    """The environment variable of a settings field (``RTEP_`` + upper-case name)."""
    return str(Settings.model_config.get("env_prefix", "")) + field.upper()


def default_text(field: str) -> str:
    """A field's default as text (secrets shown: the defaults hold no password)."""
    value = Settings.model_fields[field].get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return str(value)


def settings_help(*fields: str, note: str = "") -> str:
    """The settings paragraph of a command's ``--help``: each variable, its default and meaning.

    Written from the fields themselves, so a command's help cannot drift from the settings class.
    """
    lines = ["settings (environment variables; all of them: docs/configuration.md):"]
    for field in fields:
        info = Settings.model_fields[field]
        lines.append(f"  {env_name(field)}={default_text(field)}")
        lines.append(f"      {info.description or ''}")
    if note:
        lines.append(f"  {note}")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
