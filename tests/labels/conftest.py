"""Fixtures of the label tests: the fake linked world (identity link) and one torch thread."""

from fake_linked import fake_world, identity_linked, linked  # noqa: F401  (the fake linked world's fixtures)
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)
