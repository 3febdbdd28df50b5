-- DLQ replay that is idempotent for real (issue 16).
-- replay_count: how many times a dead letter was re-sent (the attempt number of its last replay,
--   incremented in the same transaction that marks it replayed, committed after the broker's ack).
-- replay_of / replay_attempt: a message rejected again after a replay links to the original row
--   (headers rtep.replay.of / rtep.replay.attempt). One row per (original, attempt): a replay
--   re-sent after a crash before its marking committed is rejected into the same row, not a new one.
--   No foreign key: erasing an original must never make the rejected-events sink fail.
ALTER TABLE rtep.rejected_events
    ADD COLUMN replay_count   integer NOT NULL DEFAULT 0,
    ADD COLUMN replay_of      bigint,
    ADD COLUMN replay_attempt integer;
CREATE UNIQUE INDEX rejected_events_replay_idx
    ON rtep.rejected_events (replay_of, replay_attempt) WHERE replay_of IS NOT NULL;
