"""A latest-wins background worker: widgets stay responsive while models run, and the last request is always shown."""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LatestWinsWorker", "error_html"]

_log = logging.getLogger(__name__)


class LatestWinsWorker:
    """Run submitted callables one at a time on a background thread, keeping only the newest pending one.

    A burst of requests (slider releases, dropdown changes) is coalesced: while a task runs, each new
    :meth:`submit` replaces the pending request, so at most one task waits and the final state is always
    computed. A result is delivered to ``on_result`` only if no newer request arrived while it was computed;
    otherwise it is dropped as stale. A task's exception goes to ``on_error`` (the widget shows it) and is kept
    in :attr:`last_error`; an exception raised by a callback is logged and kept there too.

    The thread is started on demand and exits when nothing is pending, so idle widgets hold no thread.

    Parameters
    ----------
    on_result : callable
        Called on the worker thread with a task's return value.
    on_error : callable
        Called on the worker thread with the exception a task raised.
    name : str
        Name of the worker thread.
    """

    def __init__(self, on_result: Callable[[Any], None], on_error: Callable[[Exception], None], *,
                 name: str = "linkviz-worker") -> None:
        self._on_result = on_result
        self._on_error = on_error
        self._name = name
        self._condition = threading.Condition()
        self._pending: tuple[int, Callable[[], Any]] | None = None
        self._running = False
        self._submitted = 0
        self.n_completed = 0
        self.n_dropped = 0
        self.last_error: Exception | None = None

    @property
    def busy(self) -> bool:
        """Whether a task is running or waiting."""
        with self._condition:
            return self._running or self._pending is not None

    def submit(self, task: Callable[[], Any]) -> int:
        """Queue ``task`` (no arguments), replacing any request that has not started; return its number."""
        with self._condition:
            self._submitted += 1
            if self._pending is not None:
                self.n_dropped += 1
            self._pending = (self._submitted, task)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
            return self._submitted

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no task runs or waits (results delivered); False if ``timeout`` seconds passed first."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._running and self._pending is None, timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                if self._pending is None:
                    self._running = False
                    self._condition.notify_all()
                    return
                number, task = self._pending
                self._pending = None
            try:
                result = task()
            except Exception as error:  # shown in the widget by on_error, not swallowed
                self._deliver(number, self._on_error, error)
            else:
                self._deliver(number, self._on_result, result)

    def _deliver(self, number: int, callback: Callable[[Any], None], value: Any) -> None:
        with self._condition:
            stale = number != self._submitted
            if stale:
                self.n_dropped += 1
        if isinstance(value, Exception):
            self.last_error = value
        if stale:
            return
        try:
            callback(value)
        except Exception as error:
            self.last_error = error
            _log.exception("linkviz widget callback failed")
            if callback is self._on_result:
                self._deliver_error_of_callback(error)
        with self._condition:
            self.n_completed += 1

    def _deliver_error_of_callback(self, error: Exception) -> None:
        try:
            self._on_error(error)
        except Exception:
            _log.exception("linkviz widget error callback failed")


def error_html(error: Exception) -> str:
    """A visible, escaped one-line error message for a widget."""
    return f'<span style="color:#b00020">{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>'
