"""Security detections: pure rules over events, one alert per incident (docs/semantics.md, "Detections").

Each rule is a ``StatefulLogic[Event, Alert, AlertStats]`` holding the state of many subjects: the
users of one Kafka partition, or the IPs of one shard for ``credential_stuffing`` (fed in event-time
order across partitions by ``operators.ordering``). A threshold rule keeps, per subject, the
qualifying events of the last window; when at least N fall within W an incident opens with a
deterministic ``alert_id`` (rule, subject, first event of the incident). Further qualifying events
within W of the incident's last one extend it: the same ``alert_id`` is emitted again with a larger
count and later ``window_end``, at most once per batch. An event more than W after the incident's
last one can only start a new incident. State expires with the watermark.

Layout: ``params`` (every built-in rule's parameters and defaults), ``window`` (a subject's
columnar window), ``incidents`` (``BurstTracker``, ``alert_id_for``), ``rule`` (the base classes,
``RuleBatch``, ``AlertStats``), ``snapshots`` (the versioned snapshot records: their module path is
pickled, never move them), then one module per rule family. Adding a rule: docs/extending.md.
"""
