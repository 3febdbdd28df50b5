"""Sinks: idempotent, batched writers into PostgreSQL, Redis and Kafka (see docs/sinks.md)."""
