"""A real Prometheus (the apt binary) on a free loopback port, and promtool, for the tests.

The server's configuration is ops/prometheus/prometheus.yml with the scrape targets swapped for one
local ``rtep`` job and every interval set to 1 s, so it loads the same recording rules as production.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rtep.core.embedded import free_port
from tests.harness import wait_until
from tests.observability.artifacts import PROMETHEUS_DIR, load_yaml

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
MISSING = "prometheus/promtool not installed: run .ci/install-prometheus.sh"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; the caller asserts on the return code and output."""
    assert PROMTOOL, MISSING
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )


@dataclass
class Prometheus:
    """A running server: HTTP API helpers that fail loudly on query errors."""

    url: str
    log: Path

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # loopback, http
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422: the query did not parse or evaluate
            body = json.load(exc)
        assert body["status"] == "success", f"{path} {params}: {body.get('error')}"
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """Instant query at unix time ``at``: the vector's samples (a scalar becomes one sample)."""
        data = self._get("/api/v1/query", query=expr, time=f"{at:.3f}")
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """Range query with a 1 s step: one matrix series per label set."""
        data = self._get(
            "/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step="1"
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str, at: float) -> float | None:
        """The single value of a one-sample query at ``at``, or None when empty."""
        samples = self.query(expr, at)
        return float(samples[0]["value"][1]) if samples else None


def local_config(target: str) -> dict[str, Any]:
    """ops/prometheus/prometheus.yml for a local run: 1 s intervals, one ``rtep`` target."""
    config: dict[str, Any] = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    config["scrape_configs"] = [{"job_name": "rtep", "static_configs": [{"targets": [target]}]}]
    return config


@contextmanager
def running_prometheus(target: str, workdir: Path) -> Iterator[Prometheus]:
    """Start Prometheus scraping ``target`` (host:port); stop it and keep its log on exit."""
    assert PROMETHEUS, MISSING
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(local_config(target), sort_keys=False))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", log)
    try:
        wait_until(lambda: _ready(server, proc), timeout=30, what="Prometheus ready")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(server: Prometheus, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, f"prometheus exited:\n{server.log.read_text()[-3000:]}"
    try:
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
