-- Where each event's IP address is (issue 20): filled at validation from the configured MaxMind
-- databases (RTEP_GEOIP_*_DB) or the embedded geoip2fast data. NULL for events without an IP,
-- private/reserved addresses, and addresses the data does not know; city, latitude and
-- longitude only with a city database.
-- country: ISO 3166-1 alpha-2; asn: autonomous system number (up to 2^32 - 1, hence bigint).
-- Nullable columns without a default: adding them rewrites nothing, instant on a large table.
-- No index yet: every index slows the events sink's writes; add one with the first query that needs it.
ALTER TABLE rtep.events
    ADD COLUMN country   text,
    ADD COLUMN asn       bigint,
    ADD COLUMN as_org    text,
    ADD COLUMN city      text,
    ADD COLUMN latitude  double precision,
    ADD COLUMN longitude double precision;

-- A session's country: that of its first event with a located IP (the sessionizer's, like ip).
ALTER TABLE rtep.sessions
    ADD COLUMN country text;
