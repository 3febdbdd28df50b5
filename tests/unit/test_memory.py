"""The heap trimmer: found on glibc (this platform), running as a daemon thread."""

from __future__ import annotations

import platform

import pytest

from rtep.core.memory import _malloc_trim, start_heap_trimmer


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_trimmer_runs_in_a_daemon_thread_on_glibc() -> None:
    trim = _malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)  # 1: memory was released, 0: there was none to release
    thread = start_heap_trimmer(interval=3600)
    assert thread is not None and thread.daemon and thread.is_alive()
