"""Traffic simulator for rtep: realistic user activity, labelled attacks, malformed messages.

A client of the platform: it only imports the wire schemas (``operators.schemas``). The pure part
(``sim.generator``) turns a ``SimConfig`` into a deterministic stream of Kafka messages with
ground-truth labels; ``sim.producer`` sends them; ``sim.score`` grades the pipeline's alerts.
"""
