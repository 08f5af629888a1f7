"""A small MLP link r -> w, trained by gradient descent, to compare with the linear link.

The reference (and the paper) use a linear link only; this exists to measure what a nonlinear map would gain.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from linkviz.linking.fit import validate_pairs
from linkviz.minibatch_training import fit_minibatches

__all__ = ["MLPLink", "fit_mlp_link"]


class MLPLink(nn.Module):
    """``w = w_mean + w_std * mlp((r - r_mean) / r_std)`` with one hidden ReLU layer.

    Parameters
    ----------
    r_dim, w_dim, hidden : int
        Input, output and hidden widths.
    """

    def __init__(self, r_dim: int, w_dim: int, *, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(r_dim, hidden), nn.ReLU(), nn.Linear(hidden, w_dim))
        self.register_buffer("r_mean", torch.zeros(r_dim))
        self.register_buffer("r_std", torch.ones(r_dim))
        self.register_buffer("w_mean", torch.zeros(w_dim))
        self.register_buffer("w_std", torch.ones(w_dim))

    @property
    def r_dim(self) -> int:
        return self.r_mean.shape[0]

    @property
    def w_dim(self) -> int:
        return self.w_mean.shape[0]

    def to_w(self, r: Tensor) -> Tensor:
        """w (N, w_dim) from r (N, D); differentiable. ``r`` must be on the module's device."""
        if r.ndim != 2 or r.shape[1] != self.r_dim:
            raise ValueError(f"r must have shape (N, {self.r_dim}), got {tuple(r.shape)}")
        dtype = self.r_mean.dtype
        standardized = (r.to(dtype) - self.r_mean) / self.r_std
        return (self.net(standardized) * self.w_std + self.w_mean).to(r.dtype)

    forward = to_w

    def predict(self, r: np.ndarray) -> np.ndarray:
        """w (N, w_dim) from r (N, D) as float32 numpy."""
        r_tensor = torch.as_tensor(np.asarray(r, dtype=np.float32), device=self.r_mean.device)
        with torch.no_grad():
            return self.to_w(r_tensor).cpu().numpy()


def _init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Linear initialisation, drawn from ``generator`` instead of the global RNG."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)


def fit_mlp_link(
    r: np.ndarray | Tensor,
    w: np.ndarray | Tensor,
    *,
    hidden: int = 512,
    epochs: int = 200,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MLPLink:
    """Train an :class:`MLPLink` with Adam on the MSE between standardised ``w`` and its prediction.

    The loop is :func:`~linkviz.minibatch_training.fit_minibatches` with a constant learning rate and no flips.

    Parameters
    ----------
    r : ndarray or Tensor, shape (N, D)
    w : ndarray or Tensor, shape (N, w_dim)
    hidden : int
        Hidden units.
    epochs : int
        Passes over the data.
    batch_size : int
        Pairs per step.
    learning_rate, weight_decay : float
        Adam settings.
    seed : int
        Seeds the initialisation and the shuffling (no global RNG is touched; one generator draws both, the
        initialisation first).
    device : str or torch.device
        Where to train; the returned module stays there.
    progress : bool
        Show a tqdm bar over the optimiser steps with the epoch's running loss.

    Returns
    -------
    MLPLink
        In eval mode, with ``r``/``w`` means and standard deviations (constant units get std 1) stored as buffers.

    Raises
    ------
    ValueError
        For mismatched, non-2-D or non-finite pairs, or a non-positive ``hidden``, ``epochs`` or ``batch_size``.
    """
    r, w = validate_pairs(r, w)
    for name, value in (("hidden", hidden), ("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    generator = torch.Generator().manual_seed(seed)
    link = MLPLink(r.shape[1], w.shape[1], hidden=hidden)
    _init_parameters(link, generator)
    r_tensor = torch.as_tensor(r, dtype=torch.float32)
    w_tensor = torch.as_tensor(w, dtype=torch.float32)
    for name, data in (("r", r_tensor), ("w", w_tensor)):
        std = data.std(dim=0) if len(data) > 1 else torch.ones(data.shape[1])
        getattr(link, f"{name}_mean").copy_(data.mean(dim=0))
        getattr(link, f"{name}_std").copy_(torch.where(std > 0, std, torch.ones_like(std)))
    link.to(device).train()
    r_tensor, w_tensor = r_tensor.to(device), w_tensor.to(device)

    def batch_loss(rows: Tensor, flipped: Tensor) -> Tensor:
        target = (w_tensor[rows] - link.w_mean) / link.w_std
        prediction = link.net((r_tensor[rows] - link.r_mean) / link.r_std)
        return torch.nn.functional.mse_loss(prediction, target)

    return fit_minibatches(link, len(r_tensor), batch_loss, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, weight_decay=weight_decay, schedule=None, seed=generator,
                           device=device, description="fitting MLP link", progress=progress)
