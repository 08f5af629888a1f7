"""Fixtures of the paper-figure tests: the fake linked world (for a controller's view) on one torch thread."""

from __future__ import annotations

from fake_linked import fake_world, identity_linked, linked  # noqa: F401  (the fake linked world's fixtures)
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)
