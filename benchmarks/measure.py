"""Timing helpers shared by the benchmark scripts (imported as a sibling module: run the scripts from any folder)."""

from __future__ import annotations

import time
from collections.abc import Callable


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def timed_with_peak(run: Callable[[], object]) -> tuple[float, float | None, object]:
    """Wall seconds of ``run()``, its peak resident set above the one at its start (MiB; Linux's ``VmHWM``, reset
    before the run through ``/proc/self/clear_refs``, so nothing is traced and timing is unaffected; ``None``
    elsewhere), and its result."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        start_kib = _status_kib("VmRSS")
    except OSError:
        start_kib = None
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = None if start_kib is None else (_status_kib("VmHWM") - start_kib) / 1024
    return seconds, peak, result
