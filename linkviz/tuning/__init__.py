"""Unit tuning: perturb units of r, link, and render what each unit encodes."""

from linkviz.tuning.perturbations import (
    AddStd,
    ScaleUnits,
    SetUnits,
    UnitStats,
    effect_sizes,
    tuned_latents,
    unit_values,
)
from linkviz.tuning.sweep import SweepResult, run_sweep

__all__ = [
    "AddStd",
    "ScaleUnits",
    "SetUnits",
    "SweepResult",
    "UnitStats",
    "effect_sizes",
    "run_sweep",
    "tuned_latents",
    "unit_values",
]
