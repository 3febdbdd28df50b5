"""``rtep run`` in a terminal: the live console shows the pipeline at work; Ctrl-C leaves nothing.

Driven through a pseudo-terminal, as a newcomer's terminal would run it, so the ``rich`` live view
(not the plain-line fallback) is what is read back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil

from operators.records import Reason
from tests.harness import ROOT, fresh_database, redis_prefix, rtep_run_env, wait_until

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
ATTACK_RULES = ("failed_login_burst", "credential_stuffing", "brute_force_success")


class Terminal:
    """A pseudo-terminal of 160 x 50 whose output is read continuously (the child never blocks)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the slave side closed: the child is gone
                return
            if not data:
                return
            self._chunks.append(data)

    def text(self) -> str:
        """Everything shown so far, escape sequences removed."""
        return ANSI.sub("", b"".join(self._chunks).decode("utf-8", errors="replace"))

    def close(self) -> None:
        """Close both ends."""
        for fd in (self.slave, self.master):
            with contextlib.suppress(OSError):
                os.close(fd)


def _numbers(text: str, label: str) -> list[int]:
    """Every value shown in the first cell after ``label`` in a table row."""
    return [int(n.replace(",", "")) for n in re.findall(rf"{label}\s*│\s*([\d,]+)", text)]


def test_rtep_run_console_shows_the_pipeline_and_ctrl_c_stops_every_child(tmp_path: Path) -> None:
    """Scenario: `rtep run` on embedded defaults in a terminal, empty database; then Ctrl-C.

    We expect within 60 s: events stored, rejections by reason code, open sessions and an alert
    of a rule only the simulator's injected attacks trigger; then, on Ctrl-C, exit 0 within 10 s
    naming each child it stopped, and none of its processes left running.
    """
    with fresh_database(migrated=False) as dsn, redis_prefix() as prefix:
        env = rtep_run_env(dsn, prefix, tmp_path) | {"TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        terminal = Terminal()
        rtep = Path(sys.executable).parent / "rtep"
        proc = subprocess.Popen(
            [str(rtep), "run", "--rate", "200", "--users", "1000", "--broker-port", "0"],
            cwd=ROOT, env=env, stdin=terminal.slave, stdout=terminal.slave,
            stderr=terminal.slave, start_new_session=True,
        )  # fmt: skip
        try:
            reasons = [reason.value for reason in Reason]

            def shows_everything() -> bool:
                assert proc.poll() is None, terminal.text()[-3000:]
                text = terminal.text()
                return (
                    any(n > 0 for n in _numbers(text, "stored in PostgreSQL +│ +[\\d,]+/s"))
                    and any(re.search(rf"│ {r} +│ +[1-9]", text) for r in reasons)
                    and any(n > 0 for n in _numbers(text, "open sessions"))
                    and any(re.search(rf"│ [\d:]+ +│ {rule} ", text) for rule in ATTACK_RULES)
                )

            started = time.monotonic()
            wait_until(shows_everything, timeout=60, what="events, rejections, sessions, alert")
            shown_after = time.monotonic() - started
            children = psutil.Process(proc.pid).children(recursive=True)
            assert {"pipeline", "simulator", "broker"} <= {_role(c) for c in children}, children
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
            stopping = time.monotonic()
            assert proc.wait(timeout=10) == 0, terminal.text()[-3000:]
            stop_seconds = time.monotonic() - stopping
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            terminal.close()
        left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"left running after Ctrl-C: {left}"
        text = terminal.text()
        for name in ("simulator", "pipeline", "broker"):
            assert f"stopped {name}:" in text, text[-2000:]
        assert "stopped cleanly" in text
        assert '{"ts"' not in text, "a JSON log line reached the console"
        assert "Connect to ipv4" not in text, "librdkafka noise on the console"
        print(f"console complete after {shown_after:.1f} s; Ctrl-C took {stop_seconds:.1f} s")


def _role(process: psutil.Process) -> str:
    """Which child of rtep run a process is, from its command line."""
    command = " ".join(process.cmdline())
    for marker, role in (
        ("rtep.commands.serve", "pipeline"),
        ("-m sim", "simulator"),
        (" broker ", "broker"),
    ):
        if marker in command:
            return role
    return command
