"""Where 0.2.0 recovery snapshots find ``PartitionState``: a pickle names a class by its module,
and the Kafka input moved to ``sources.kafka`` in 0.3.0. Kept so that a 0.2.0 recovery directory
resumes (``tests/upgrade``)."""

from sources.kafka import PartitionState

__all__ = ["PartitionState"]
