"""The cosine-similarity margin ranking loss (CSMR) that LaViSE trains its explainer with."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["csmr_loss"]


def csmr_loss(predictions: Tensor, label_embeddings: Tensor, targets: Tensor, *, margin: float = 1.0,
              reduction: Literal["mean", "sum", "none"] = "mean") -> Tensor:
    """Cosine-similarity margin ranking loss.

    With ``s_j = cos(prediction, e_j)`` over the label embeddings and ``s+`` the mean of ``s_j`` over a sample's
    positive labels, a sample's loss is ``sum over negative labels j of max(0, margin - s+ + s_j)``.

    Parameters
    ----------
    predictions : Tensor, shape [B, D]
        Predicted embeddings.
    label_embeddings : Tensor, shape [T, D]
        Embedding of every label word ranked by the loss.
    targets : Tensor of bool or {0, 1}, shape [B, T]
        Multi-hot positive labels of each sample (a multi-word name has several).
    margin : float
        Ranking margin (1 in LaViSE).
    reduction : {"mean", "sum", "none"}
        Mean or sum over samples, or the per-sample losses [B].

    Returns
    -------
    Tensor
        Scalar, or shape [B] for ``reduction="none"``.

    Raises
    ------
    ValueError
        For mismatched shapes, a sample without any positive label, or an unknown reduction.
    """
    if predictions.ndim != 2 or label_embeddings.ndim != 2 or predictions.shape[1] != label_embeddings.shape[1]:
        raise ValueError(f"predictions [B, D] and label_embeddings [T, D] must share D, got "
                         f"{tuple(predictions.shape)} and {tuple(label_embeddings.shape)}")
    expected = (predictions.shape[0], label_embeddings.shape[0])
    if tuple(targets.shape) != expected:
        raise ValueError(f"targets must have shape [B, T] = {list(expected)}, got {tuple(targets.shape)}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    positive = targets.to(torch.bool)
    n_positive = positive.sum(1)
    if (n_positive == 0).any():
        row = int(torch.nonzero(n_positive == 0)[0, 0])
        raise ValueError(f"sample {row} has no positive label; every sample needs at least one")
    similarity = F.normalize(predictions, dim=1) @ F.normalize(label_embeddings, dim=1).T
    positive_mean = (similarity * positive).sum(1) / n_positive
    hinge = (margin - positive_mean[:, None] + similarity).clamp_min(0.0)
    loss = hinge.masked_fill(positive, 0.0).sum(1)
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()
