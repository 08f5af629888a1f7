"""The linear link from classifier activations r to generator latents w: w = A r + b.

For generators whose latent is a Gaussian z fed straight to synthesis (a DCGAN), the link may also carry a
``latent_norm``: its output is then rescaled to that norm, ``w = rho (A r + b) / |A r + b|``. Ridge shrinkage pulls
``A r + b`` toward the pairs' mean, near ``z = 0``, far inside the shell ``|z| ~ sqrt(z_dim)`` where a Gaussian
prior puts its samples (its typical set); ``G(0)`` of such a generator is no image of the training set (the faces
DCGAN draws a faceless brown texture there). The projection keeps the direction the link predicts and puts it
back on the shell. :func:`linkviz.build_linked_model` sets it for worlds that declare ``latent_prior =
"gaussian"``; StyleGAN's W space is not such a shell, and its links carry none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from linkviz.atomic_files import write_atomically
from linkviz.models.safetensors_io import load_safetensors

__all__ = ["LinearLink", "check_activations"]


@dataclass(frozen=True)
class LinearLink:
    """An affine map ``w = weight @ r + bias``, optionally projected to the latent prior's norm.

    Because the map is linear, changing unit ``i`` of r by ``delta`` moves the affine latent by
    ``delta * weight[:, i]`` for every image (:meth:`direction`); with ``latent_norm`` the result is then
    rescaled (:meth:`project`).

    Attributes
    ----------
    weight : ndarray of float32, shape (w_dim, D)
    bias : ndarray of float32, shape (w_dim,)
    latent_norm : float or None
        If set, :meth:`to_w` and :meth:`predict` rescale each latent to this Euclidean norm (the typical norm
        of a Gaussian z-only generator's latents, see the module docstring); ``None``: the affine map as is.
    """

    weight: np.ndarray
    bias: np.ndarray
    latent_norm: float | None = None

    def __post_init__(self) -> None:
        weight = np.asarray(self.weight, dtype=np.float32)
        bias = np.asarray(self.bias, dtype=np.float32)
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise ValueError(f"weight must be (w_dim, D) and bias (w_dim,), got {weight.shape} and {bias.shape}")
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ValueError("link weight or bias contains NaN or inf")
        if self.latent_norm is not None:
            if not (np.isfinite(self.latent_norm) and self.latent_norm > 0):
                raise ValueError(f"latent_norm must be a positive finite norm or None; got {self.latent_norm}")
            object.__setattr__(self, "latent_norm", float(self.latent_norm))
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

    def affine(self, r: torch.Tensor) -> torch.Tensor:
        """``A r + b`` (N, w_dim) from r (N, D), before any projection; differentiable, on r's device and dtype."""
        if r.ndim != 2 or r.shape[1] != self.r_dim:
            raise ValueError(f"r must have shape (N, {self.r_dim}), got {tuple(r.shape)}")
        weight = torch.as_tensor(self.weight, device=r.device, dtype=r.dtype)
        return r @ weight.T + torch.as_tensor(self.bias, device=r.device, dtype=r.dtype)

    def project(self, w: torch.Tensor) -> torch.Tensor:
        """Latents ``w [..., w_dim]`` rescaled to :attr:`latent_norm` (unchanged when it is None); differentiable.

        A latent of norm 0 stays 0 (its direction is undefined).
        """
        if self.latent_norm is None:
            return w
        return w * (self.latent_norm / w.norm(dim=-1, keepdim=True).clamp_min(1e-12))

    def to_w(self, r: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim) from r (N, D): :meth:`project` of :meth:`affine`; differentiable, on r's device and dtype."""
        return self.project(self.affine(r))

    def predict(self, r: np.ndarray) -> np.ndarray:
        """w (N, w_dim) from r (N, D) as numpy (:meth:`to_w` on the CPU)."""
        r = np.asarray(r, dtype=np.float32)
        if r.ndim != 2 or r.shape[1] != self.r_dim:
            raise ValueError(f"r must have shape (N, {self.r_dim}), got {r.shape}")
        return self.to_w(torch.from_numpy(r)).numpy()

    def save(self, path: str | Path) -> None:
        """Write the link as safetensors."""
        from safetensors.numpy import save

        tensors = {"weight": self.weight, "bias": self.bias}
        if self.latent_norm is not None:
            tensors["latent_norm"] = np.asarray([self.latent_norm], dtype=np.float64)
        write_atomically(path, save(tensors))

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
        latent_norm = float(tensors["latent_norm"][0]) if "latent_norm" in tensors else None
        return cls(weight=tensors["weight"], bias=tensors["bias"], latent_norm=latent_norm)


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
