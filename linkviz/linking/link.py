"""The linear link from classifier activations r to generator latents w: w = A r + b."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from linkviz.models.safetensors_io import load_safetensors

__all__ = ["LinearLink", "check_activations"]


@dataclass(frozen=True)
class LinearLink:
    """An affine map ``w = weight @ r + bias``.

    Because the map is linear, changing unit ``i`` of r by ``delta`` moves w by
    ``delta * weight[:, i]`` for every image (:meth:`direction`).

    Attributes
    ----------
    weight : ndarray of float32, shape (w_dim, D)
    bias : ndarray of float32, shape (w_dim,)
    """

    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        weight = np.asarray(self.weight, dtype=np.float32)
        bias = np.asarray(self.bias, dtype=np.float32)
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise ValueError(f"weight must be (w_dim, D) and bias (w_dim,), got {weight.shape} and {bias.shape}")
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ValueError("link weight or bias contains NaN or inf")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)

    @property
    def r_dim(self) -> int:
        return self.weight.shape[1]

    @property
    def w_dim(self) -> int:
        return self.weight.shape[0]

    def direction(self, unit: int) -> np.ndarray:
        """How w moves per unit increase of r[unit], shape (w_dim,)."""
        if not 0 <= unit < self.r_dim:
            raise IndexError(f"unit {unit} out of range for r with {self.r_dim} units")
        return self.weight[:, unit]

    def to_w(self, r: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim) from r (N, D); differentiable, on r's device and dtype."""
        if r.ndim != 2 or r.shape[1] != self.r_dim:
            raise ValueError(f"r must have shape (N, {self.r_dim}), got {tuple(r.shape)}")
        weight = torch.as_tensor(self.weight, device=r.device, dtype=r.dtype)
        return r @ weight.T + torch.as_tensor(self.bias, device=r.device, dtype=r.dtype)

    def predict(self, r: np.ndarray) -> np.ndarray:
        """w (N, w_dim) from r (N, D) as numpy."""
        r = np.asarray(r, dtype=np.float32)
        if r.ndim != 2 or r.shape[1] != self.r_dim:
            raise ValueError(f"r must have shape (N, {self.r_dim}), got {r.shape}")
        return r @ self.weight.T + self.bias

    def save(self, path: str | Path) -> None:
        """Write the link as safetensors."""
        from safetensors.numpy import save_file

        save_file({"weight": self.weight, "bias": self.bias}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> LinearLink:
        """Read a link written by :meth:`save` (no unpickling).

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        ValueError
            If the file is not a safetensors file (a pickle or garbage; the message names the file and what it
            looks like), or it lacks the ``weight`` and ``bias`` tensors.
        """
        tensors = load_safetensors(path, framework="numpy", what="linear link")
        missing = [name for name in ("weight", "bias") if name not in tensors]
        if missing:
            raise ValueError(f"{path} is a safetensors file but not a linear link: it lacks {missing} (it holds "
                             f"{sorted(tensors)[:10]}); write links with LinearLink.save")
        return cls(weight=tensors["weight"], bias=tensors["bias"])


def check_activations(r: torch.Tensor | np.ndarray, link: LinearLink, device: torch.device | str, *,
                      name: str = "r") -> torch.Tensor:
    """Activations ``r`` as a detached float32 tensor on ``device``, checked against ``link``.

    Parameters
    ----------
    r : Tensor or ndarray, shape [N, D]
        Penultimate activations (or shifts of them), N >= 1 and ``D == link.r_dim``.
    link : LinearLink
        The link the activations are fed to.
    device : torch.device or str
        Where the result lives.
    name : str
        What the caller calls ``r``, for the messages.

    Returns
    -------
    Tensor of float32, shape [N, D]

    Raises
    ------
    ValueError
        For a wrong shape, or NaN or infinite values (the message gives their count).
    """
    r = torch.as_tensor(r).detach().to(device=device, dtype=torch.float32)
    if r.ndim != 2 or r.shape[0] == 0 or r.shape[1] != link.r_dim:
        raise ValueError(f"{name} must have shape [N >= 1, D={link.r_dim}]; got {list(r.shape)}")
    n_bad = int((~torch.isfinite(r)).sum())
    if n_bad:
        raise ValueError(f"{name} holds {n_bad} NaN or infinite values out of {r.numel()}")
    return r
