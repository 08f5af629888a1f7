"""A change table with planted structure, shared by the population controller and dashboard tests.

Unit k of each group of three changes one thing: ear area up, eye luminance down, nose area up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from linkviz.quantify import ChangeTable

LABELS = ("ear", "eye", "nose")
METRICS = ("area", "luminance")


def planted_table(units: np.ndarray, *, n_seeds: int = 6, seed: int = 0) -> ChangeTable:
    """Unit k of each group of three changes one thing: ear area up, eye luminance down, nose area up."""
    rng = np.random.default_rng(seed)
    planted = 0.03 * rng.normal(size=(len(units), len(LABELS), len(METRICS)))
    group = np.arange(len(units)) % 3
    planted[group == 0, 0, 0] += 1.0
    planted[group == 1, 1, 1] -= 0.5
    planted[group == 2, 2, 0] += 0.8
    unit, seed_id, step, label, metric = np.meshgrid(np.arange(len(units)), np.arange(n_seeds), np.arange(2),
                                                     np.arange(len(LABELS)), np.arange(len(METRICS)), indexing="ij")
    change = planted[unit, label, metric] * step + 0.05 * rng.normal(size=unit.shape) * step
    return ChangeTable(pd.DataFrame({
        "unit": units[unit.ravel()], "seed": seed_id.ravel(), "step": step.ravel(),
        "label": np.array(LABELS)[label.ravel()], "metric": np.array(METRICS)[metric.ravel()],
        "change": change.ravel()}))
