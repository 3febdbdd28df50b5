"""Per-process CPU seconds and memory from ``/proc`` (Linux), and PostgreSQL backend sampling.

CPU is ``utime + stime`` of one process (its threads included, its children not). PostgreSQL
backends are found through ``pg_stat_activity`` for one database and sampled while they live,
so a backend's CPU is counted up to the last sample before it exits (samples every 0.5 s).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import psycopg

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15)


def memory_mb(pid: int, field_name: str = "VmHWM") -> float | None:
    """A memory line of ``/proc/<pid>/status`` in MiB: VmHWM = peak RSS, VmRSS = current."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@dataclass
class BackendSampler:
    """Samples the CPU of every PostgreSQL backend connected to ``database`` (not our own)."""

    dsn: str
    interval: float = 0.5
    _cpu: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> BackendSampler:
        """Begin sampling in a background thread."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Take a last sample, stop, and return the CPU seconds of all backends seen."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return sum(self._cpu.values())

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while True:
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                for (pid,) in pids:
                    if (cpu := cpu_seconds(pid)) is not None:
                        self._cpu[pid] = cpu
                if self._stop.wait(self.interval):
                    return
