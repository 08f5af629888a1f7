"""The outcome of a counterfactual search: shifts, whether each reached its target, and whether it stayed realistic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CounterfactualResult"]


@dataclass(frozen=True, eq=False)
class CounterfactualResult:
    """Outcome of :func:`~linkviz.counterfactual.find_counterfactuals` for N examples.

    Attributes
    ----------
    shift : ndarray of float32, shape (N, D)
        The shift ``s`` (frozen at the step an example succeeded).
    r_counterfactual : ndarray of float32, shape (N, D)
        ``r - s`` clipped to the classifier's ``penultimate_range`` (``relu(r - s)`` after a ReLU).
    success : ndarray of bool, shape (N,)
        Whether the rendered counterfactual was classified as the target *and*, when the search had a realism
        model, its linked latent stayed realistic (:attr:`realistic`).
    steps : ndarray of int, shape (N,)
        Gradient steps taken: the step of success, or ``max_steps`` for failures.
    predicted : ndarray of int, shape (N,)
        Class of the last rendered counterfactual.
    target_probability : ndarray of float32, shape (N,)
        Softmax probability of the target class for the last rendered counterfactual.
    origin, target : ndarray of int, shape (N,)
        The class pairs.
    class_names : tuple of str
        The classifier's class names.
    latent_distance : ndarray of float, shape (N,), or None
        Mahalanobis distance of the last counterfactual's linked latent from the generator's latents
        (:class:`~linkviz.counterfactual.LatentRealism`); None when the search had no realism model.
    realism_threshold : float or None
        The distance beyond which a latent is unrealistic; None without a realism model.
    """

    shift: np.ndarray
    r_counterfactual: np.ndarray
    success: np.ndarray
    steps: np.ndarray
    predicted: np.ndarray
    target_probability: np.ndarray
    origin: np.ndarray
    target: np.ndarray
    class_names: tuple[str, ...] = ()
    latent_distance: np.ndarray | None = None
    realism_threshold: float | None = None

    @property
    def s(self) -> np.ndarray:
        """Alias of :attr:`shift`, shape (N, D)."""
        return self.shift

    @property
    def reached_target(self) -> np.ndarray:
        """Whether the last rendered counterfactual is the target class (realistic or not), bool of shape (N,)."""
        return np.asarray(self.predicted) == np.asarray(self.target)

    @property
    def realistic(self) -> np.ndarray | None:
        """Whether each counterfactual's latent lies within the threshold, bool of shape (N,); None if unscored."""
        if self.latent_distance is None or self.realism_threshold is None:
            return None
        return np.asarray(self.latent_distance) <= self.realism_threshold

    @property
    def success_rate(self) -> float:
        """Fraction of examples that succeeded (reached the target, realistically when scored)."""
        return float(self.success.mean())

    @property
    def realistic_rate(self) -> float:
        """Fraction of examples whose counterfactual is realistic (NaN when unscored)."""
        realistic = self.realistic
        return float("nan") if realistic is None else float(realistic.mean())

    @property
    def median_steps(self) -> float:
        """Median number of steps over successful examples (NaN if none succeeded)."""
        return float(np.median(self.steps[self.success])) if self.success.any() else float("nan")

    def to_frame(self) -> pd.DataFrame:
        """One row per example: ``example, origin, target, success, steps, predicted, target_probability,
        reached_target, latent_distance, realistic`` (the last two NaN / missing without a realism model), plus
        ``origin_name, target_name, predicted_name`` when class names are known."""
        n_examples = len(self.success)
        realistic = self.realistic
        frame = pd.DataFrame({
            "example": np.arange(n_examples), "origin": self.origin, "target": self.target,
            "success": self.success, "steps": self.steps, "predicted": self.predicted,
            "target_probability": self.target_probability, "reached_target": self.reached_target,
            "latent_distance": (np.full(n_examples, np.nan) if self.latent_distance is None
                                else np.asarray(self.latent_distance, dtype=np.float64)),
            "realistic": pd.array([None] * n_examples if realistic is None else realistic, dtype="boolean"),
        })
        if self.class_names:
            names = np.asarray(self.class_names, dtype=object)
            for column in ("origin", "target", "predicted"):
                frame[f"{column}_name"] = names[frame[column].to_numpy()]
        return frame
