#!/usr/bin/env bash
# Run once by the postgres image when it initialises an empty data directory, as the superuser
# (POSTGRES_USER=postgres, password POSTGRES_ADMIN_PASSWORD). Creates the two login roles:
#   rtep           the application (migrations, writes): owns the rtep database, not a superuser;
#                  may grant pg_monitor on, which migration 002 gives rtep_readonly.
#   rtep_readonly  Grafana's datasource and postgres-exporter; its grants are in sql/002.
# The passwords come from the container's environment (ops/compose.yaml), never from this file.
# The image sources this file when it is not executable: it sets no shell option of its own.

: "${RTEP_APP_PASSWORD:?set POSTGRES_PASSWORD in ops/.env}"
: "${RTEP_READONLY_PASSWORD:?set POSTGRES_READONLY_PASSWORD in ops/.env}"

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_password="$RTEP_APP_PASSWORD" -v readonly_password="$RTEP_READONLY_PASSWORD" <<'SQL'
CREATE ROLE rtep LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
ALTER DATABASE rtep OWNER TO rtep;
GRANT pg_monitor TO rtep WITH ADMIN OPTION;
CREATE ROLE rtep_readonly LOGIN PASSWORD :'readonly_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
ALTER ROLE rtep_readonly SET default_transaction_read_only = on;
ALTER ROLE rtep_readonly SET statement_timeout = '60s';
SQL
