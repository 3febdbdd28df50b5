-- rtep core tables (see CONTRACT.md). Every table has a natural unique key so that
-- replayed writes are idempotent (ON CONFLICT DO NOTHING for facts, DO UPDATE for aggregates).
CREATE SCHEMA IF NOT EXISTS rtep;

CREATE TABLE rtep.events (
    event_id     uuid PRIMARY KEY,
    type         text        NOT NULL,
    ts           timestamptz NOT NULL,
    user_id      text        NOT NULL,
    session_id   text,
    ip           inet,
    device       text,
    browser      text,
    os           text,
    device_class text CHECK (device_class IN ('desktop', 'mobile', 'tablet', 'bot', 'other')),
    page         text,
    payload      jsonb       NOT NULL,
    late         boolean     NOT NULL DEFAULT false,
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_user_ts_idx ON rtep.events (user_id, ts);
CREATE INDEX events_ts_idx ON rtep.events (ts);
CREATE INDEX events_session_idx ON rtep.events (session_id);

CREATE TABLE rtep.rejected_events (
    id               bigserial PRIMARY KEY,
    received_at      timestamptz NOT NULL,
    reason           text        NOT NULL,
    detail           text        NOT NULL,
    raw              bytea       NOT NULL,
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    replayed_at      timestamptz,
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX rejected_events_reason_idx ON rtep.rejected_events (reason, received_at);

CREATE TABLE rtep.sessions (
    session_id       text PRIMARY KEY,
    user_id          text        NOT NULL,
    started_at       timestamptz NOT NULL,
    last_event_at    timestamptz NOT NULL,
    ended_at         timestamptz,
    event_count      integer     NOT NULL,
    page_views       integer     NOT NULL,
    duration_seconds double precision NOT NULL,
    entry_page       text,
    exit_page        text,
    device           text,
    ip               inet,
    ended_by         text CHECK (ended_by IN ('logout', 'timeout'))
);
CREATE INDEX sessions_user_idx ON rtep.sessions (user_id, started_at);
CREATE INDEX sessions_open_idx ON rtep.sessions (last_event_at) WHERE ended_at IS NULL;

CREATE TABLE rtep.alerts (
    alert_id     text PRIMARY KEY,
    rule         text        NOT NULL,
    severity     text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject_type text        NOT NULL CHECK (subject_type IN ('user', 'ip')),
    subject      text        NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    event_count  integer     NOT NULL,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL
);
CREATE INDEX alerts_rule_created_idx ON rtep.alerts (rule, created_at);
CREATE INDEX alerts_subject_idx ON rtep.alerts (subject_type, subject);

CREATE TABLE rtep.event_counts_minute (
    minute       timestamptz NOT NULL,
    type         text        NOT NULL,
    events       bigint      NOT NULL,
    unique_users bigint      NOT NULL,
    PRIMARY KEY (minute, type)
);
