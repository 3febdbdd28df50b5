"""The processes of one system under test: one for raw and peer, one or more for rtep (``-i/-a``)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from bench.procstat import cpu_seconds, memory_mb
from tests.harness import stop_processes


@dataclass
class Processes:
    """Started processes measured as one system: CPU and memory are summed over them."""

    procs: list[subprocess.Popen[bytes]]
    metrics_ports: list[int]

    def exited(self) -> int | None:
        """The exit code of the first process that has exited, else None (all running)."""
        codes = [p.poll() for p in self.procs]
        return next((code for code in codes if code is not None), None)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of all the processes so far."""
        return sum(self.cpu_split())

    def cpu_split(self) -> list[float]:
        """User + system CPU seconds of each process so far (process 0 first)."""
        return [cpu_seconds(p.pid) or 0.0 for p in self.procs]

    def memory_mb(self, field_name: str) -> float:
        """A ``/proc/<pid>/status`` memory line summed over the processes (MiB)."""
        return sum(memory_mb(p.pid, field_name) or 0.0 for p in self.procs)

    def stop(self) -> None:
        """Stop every process together (SIGINT, then SIGKILL)."""
        stop_processes(self.procs)
