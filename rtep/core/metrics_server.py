"""Serve ``/metrics`` for the process (Python-side metrics, including bytewax's Kafka lag)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from prometheus_client import REGISTRY, start_http_server

from rtep import __version__
from rtep.core.logs import get_logger
from rtep.core.metrics import BUILD_INFO, ConsumerLagCollector
from rtep.core.settings import Settings

log = get_logger("rtep.core.metrics")
_ROOT = Path(__file__).resolve().parents[2]
_registered = False


def git_sha() -> str:
    """The running code's git revision: ``RTEP_GIT_SHA`` (set in images) or the checkout's HEAD."""
    sha = os.environ.get("RTEP_GIT_SHA")
    if sha:
        return sha
    try:
        out = subprocess.run(
            ["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def serve_metrics(settings: Settings) -> int:
    """Start the HTTP endpoint on RTEP_METRICS_HOST:RTEP_METRICS_PORT; return the bound port."""
    global _registered  # noqa: PLW0603 - one registration per process
    if not _registered:
        REGISTRY.register(ConsumerLagCollector())
        BUILD_INFO.info({"version": __version__, "git_sha": git_sha()})
        _registered = True
    server, _thread = start_http_server(settings.metrics_port, settings.metrics_host)
    port = int(server.server_port)
    log.info("metrics served", url=f"http://{settings.metrics_host}:{port}/metrics")
    return port
