-- The read-only role Grafana's PostgreSQL datasource and postgres-exporter log in as: it may read
-- rtep's tables and the server statistics (pg_monitor), nothing else: no writes, no DDL, not a
-- superuser (so a Grafana query cannot run COPY ... TO PROGRAM or read the server's files).
-- On the compose stack ops/postgres/initdb/ creates the role with its password, as the superuser,
-- before this runs. Where it is missing and the migrating role may create roles (`make run`, the
-- tests: a superuser), it is created here without a password: it cannot log in until one is set.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'rtep_readonly') THEN
        CREATE ROLE rtep_readonly LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
EXCEPTION
    -- Roles are cluster-wide: a migration of another database may have created it just now.
    WHEN duplicate_object OR unique_violation THEN
        NULL;
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'role rtep_readonly is missing and % may not create it', current_user
            USING HINT = 'create it as a superuser (CREATE ROLE rtep_readonly LOGIN PASSWORD ''...'', '
                         'see docs/deploy.md), then migrate again';
END
$$;

GRANT USAGE ON SCHEMA rtep TO rtep_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA rtep TO rtep_readonly;
-- Tables that later migrations create (as the same migrating role) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA rtep GRANT SELECT ON TABLES TO rtep_readonly;
-- postgres-exporter's statistics views (pg_stat_*, settings); read-only by definition.
GRANT pg_monitor TO rtep_readonly;
