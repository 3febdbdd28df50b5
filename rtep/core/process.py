"""Setting up the dataflow process for a long run: metrics endpoint, heap trimming, GC.

Called where the process's flow is built (``dataflows.activity``'s ``flow``, which
``python -m bytewax.run`` and ``rtep serve`` load), never on import: tests and tools build flows
in their own processes.
"""

from __future__ import annotations

import gc

from rtep.core.memory import start_heap_trimmer
from rtep.core.metrics_server import serve_metrics
from rtep.core.settings import Settings


def prepare_process(settings: Settings) -> None:
    """Serve /metrics, return freed heap to the system periodically, and set the GC for a
    pipeline (``GC_THRESHOLDS``); objects made so far leave the GC's scans."""
    serve_metrics(settings)
    start_heap_trimmer()
    gc.freeze()  # start-up objects leave the GC's scans: cheaper collections on the hot path
    gc.set_threshold(*GC_THRESHOLDS)


GC_THRESHOLDS = (200_000, 50, 100)
"""The cyclic GC's thresholds for the dataflow process (CPython's defaults: 700, 10, 10).

Thousands of events are alive at any time (a Kafka batch is 5,000), so with the defaults every
collection re-scans them and the sessions' state: 20-25 % of the pipeline's CPU in the benchmark
(py-spy; 24k -> 29-32k events/s on a 300k backlog with these values). Garbage in reference cycles
is still collected, only later (a full collection every 100 x 50 x 200,000 container allocations,
minutes at full speed); reference counting frees everything else at once, as before.
``make bench-rss`` checks that RSS stays flat.
"""
