"""Axis-aligned interpretability (Bau et al. 2017, section 3.2; seed slides): is the unit basis special?

Dissect the layer after rotating its channel basis, ``a' = Q^alpha a`` at every position, where ``Q`` is a
uniformly random rotation and ``alpha`` in [0, 1] moves from the unit basis (0) to the fully rotated one (1).
A rotation keeps all the information of the layer, so if the number of unique detectors drops, the units
themselves are more interpretable than random directions in their span. As the slides ask, several random
rotations are drawn and means and spreads reported.

The rotation is a :class:`~linkviz.models.FunctionEdit` applied through :func:`~linkviz.models.hooks` (removed
afterwards); the model is not modified.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import torch
from torch import nn
from tqdm.auto import tqdm

from ..models.classifier import Classifier, unwrap_classifier
from ..models.edits import FunctionEdit
from ..models.hooks import hooks
from .dissect import DissectionResult, dissect
from .probe_dataset import ProbeDataset

__all__ = ["AxisAlignmentResult", "axis_alignment", "fractional_rotation", "random_rotation", "rotated_units"]


def random_rotation(n: int, *, seed: int) -> np.ndarray:
    """A rotation drawn uniformly (Haar measure) from SO(n).

    Parameters
    ----------
    n : int
        Dimension (units of the layer).
    seed : int

    Returns
    -------
    ndarray of float64, shape (n, n)
        Orthogonal with determinant +1.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    gaussian = np.random.default_rng(seed).standard_normal((n, n))
    q, r = np.linalg.qr(gaussian)
    q = q * np.sign(np.diag(r))  # makes the QR factor Haar-distributed over O(n)
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def fractional_rotation(rotation: np.ndarray, alpha: float) -> np.ndarray:
    """``rotation ** alpha``: the rotation by the fraction ``alpha`` of each of its angles.

    Parameters
    ----------
    rotation : ndarray, shape (n, n)
        A rotation (orthogonal, determinant +1).
    alpha : float
        0 gives the identity (exactly), 1 the rotation itself.

    Returns
    -------
    ndarray of float64, shape (n, n)
        Orthogonal; ``fractional_rotation(Q, a) @ fractional_rotation(Q, b) == fractional_rotation(Q, a + b)``.
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.ndim != 2 or rotation.shape[0] != rotation.shape[1]:
        raise ValueError(f"rotation must be a square matrix, got shape {rotation.shape}")
    if not np.allclose(rotation @ rotation.T, np.eye(len(rotation)), atol=1e-8):
        raise ValueError("rotation must be orthogonal")
    if alpha == 0:
        return np.eye(len(rotation))
    if alpha == 1:
        return rotation.copy()
    triangular, vectors = scipy.linalg.schur(rotation.astype(np.complex128), output="complex")
    eigenvalues = np.diag(triangular)  # a normal matrix: the Schur form is diagonal, the vectors orthonormal
    powered = (vectors * np.exp(1j * alpha * np.angle(eigenvalues))) @ vectors.conj().T
    return powered.real


@contextmanager
def rotated_units(model: nn.Module | Classifier, layer: str, rotation: np.ndarray) -> Iterator[None]:
    """Within the block, ``layer`` outputs ``rotation @ a`` at every position instead of its units ``a``.

    Parameters
    ----------
    model : nn.Module or Classifier
    layer : str
        Dotted module name; its output must be ``[N, C, ...]`` with ``C == len(rotation)``.
    rotation : ndarray, shape (C, C)
        Row ``j`` is the direction that becomes unit ``j``.
    """
    module, _ = unwrap_classifier(model)
    matrix = torch.as_tensor(np.asarray(rotation, dtype=np.float64))
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"rotation must be a square matrix, got shape {tuple(matrix.shape)}")

    def rotate(output: torch.Tensor) -> torch.Tensor:
        """``rotation @ a`` at every position of ``output [N, C, ...]``."""
        if output.ndim < 2 or output.shape[1] != matrix.shape[0]:
            raise ValueError(f"layer {layer!r} outputs {tuple(output.shape)}; a {matrix.shape[0]}-unit rotation "
                             f"needs [N, {matrix.shape[0]}, ...]")
        weights = matrix.to(device=output.device, dtype=output.dtype)
        return torch.einsum("ij,nj...->ni...", weights, output)

    with hooks(module, edits=[FunctionEdit(layer, rotate)]):
        yield


@dataclass(frozen=True)
class AxisAlignmentResult:
    """Dissections of a layer in its unit basis and in rotated bases.

    Attributes
    ----------
    baseline : DissectionResult
        The unit basis (``alpha = 0``).
    conditions : tuple of (float, int)
        ``(alpha, seed)`` of each rotated dissection.
    results : tuple of DissectionResult
    """

    baseline: DissectionResult
    conditions: tuple[tuple[float, int], ...]
    results: tuple[DissectionResult, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per dissection: ``alpha, seed, detectors, unique_detectors, mean_detector_iou``
        (the unit basis as ``alpha = 0, seed = -1``)."""
        rows = []
        for (alpha, seed), result in [((0.0, -1), self.baseline), *zip(self.conditions, self.results)]:
            detectors = result.is_detector
            rows.append({"alpha": float(alpha), "seed": int(seed), "detectors": int(detectors.sum()),
                         "unique_detectors": result.unique_detectors(),
                         "mean_detector_iou": float(result.unit_iou[detectors].mean()) if detectors.any() else 0.0})
        return pd.DataFrame(rows)

    def summary(self) -> pd.DataFrame:
        """Per ``alpha``: ``alpha, rotations, unique_mean, unique_std, detectors_mean, detectors_std``."""
        frame = self.to_frame()
        return (frame.groupby("alpha").agg(rotations=("seed", "size"), unique_mean=("unique_detectors", "mean"),
                                           unique_std=("unique_detectors", "std"),
                                           detectors_mean=("detectors", "mean"), detectors_std=("detectors", "std"))
                .reset_index())


def axis_alignment(model: nn.Module | Classifier, layer: str, probe: ProbeDataset, *,
                   alphas: Sequence[float] = (0.25, 0.5, 0.75, 1.0), seeds: Sequence[int] = (0, 1, 2),
                   progress: bool = True, **dissect_options) -> AxisAlignmentResult:
    """Dissect ``layer`` in its unit basis and after random rotations of it.

    Parameters
    ----------
    model : nn.Module or Classifier
    layer : str
        Dotted module name.
    probe : ProbeDataset
    alphas : sequence of float
        Rotation fractions in (0, 1] (the unit basis, alpha = 0, is always dissected).
    seeds : sequence of int
        One random rotation per seed (each used at every alpha).
    progress : bool
        Show a bar over dissections.
    **dissect_options
        Passed to :func:`~linkviz.dissection.dissect`; ``top_k`` defaults to 0. ``cache_dir`` is refused:
        the cache key sees the weights, not the hook.

    Returns
    -------
    AxisAlignmentResult
    """
    if dissect_options.get("cache_dir") is not None:
        raise ValueError("axis_alignment cannot use cache_dir: the rotation hook is not part of the cache key")
    if any(not 0.0 < a <= 1.0 for a in alphas):
        raise ValueError(f"alphas must lie in (0, 1], got {tuple(alphas)}")
    dissect_options.setdefault("top_k", 0)
    dissect_options["progress"] = False
    conditions, results = [], []
    with tqdm(total=1 + len(alphas) * len(seeds), desc=f"{layer}: rotated bases", disable=not progress) as bar:
        baseline = dissect(model, layer, probe, **dissect_options)
        bar.update()
        for seed in seeds:
            rotation = random_rotation(len(baseline.thresholds), seed=seed)
            for alpha in alphas:
                with rotated_units(model, layer, fractional_rotation(rotation, alpha)):
                    results.append(dissect(model, layer, probe, **dissect_options))
                conditions.append((float(alpha), int(seed)))
                bar.update()
    return AxisAlignmentResult(baseline=baseline, conditions=tuple(conditions), results=tuple(results))
