"""The generator protocol in the StyleGAN calling convention, and checks of what a generator returns.

A generator maps latents ``z [N, z_dim]`` and one-hot classes ``c [N, c_dim]`` to intermediate latents
``ws [N, num_ws, w_dim]`` (``mapping``), and those to images ``[N, 3, R, R]`` in ``[-1, 1]`` (``synthesis``).
Adapters that make existing generators speak it are in :mod:`linkviz.models.adapters`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Generator", "GeneratorOutputError", "check_generated", "one_hot"]

_RANGE_TOLERANCE = 1e-3


class GeneratorOutputError(ValueError):
    """Images that are not a float tensor [N, 3, H, W] of finite values in [-1, 1]."""


@runtime_checkable
class Generator(Protocol):
    """What linkviz needs from an image generator (StyleGAN calling convention).

    Attributes
    ----------
    z_dim, w_dim, c_dim, num_ws, img_resolution : int
        Latent sizes, number of classes (0 if unconditional), number of ws and output side length.
    synthesis_module : nn.Module
        Module that ``synthesis_layer_names`` are relative to, for use with ``linkviz.models.hooks``.
    """

    z_dim: int
    w_dim: int
    c_dim: int
    num_ws: int
    img_resolution: int
    synthesis_module: nn.Module

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0) -> Tensor:
        """Map ``z [N, z_dim]`` and ``c [N, c_dim]`` to ``ws [N, num_ws, w_dim]``."""
        ...

    def synthesis(self, ws: Tensor) -> Tensor:
        """Map ``ws [N, num_ws, w_dim]`` to images ``[N, 3, R, R]`` in ``[-1, 1]``."""
        ...

    @property
    def w_avg(self) -> Tensor:
        """Average w per class, shape ``[max(c_dim, 1), w_dim]``."""
        ...

    def synthesis_layer_names(self) -> list[str]:
        """Dotted names of hookable layers of ``synthesis_module``."""
        ...


def check_generated(images: Tensor, *, resolution: int | None = None, clamp: bool = False) -> Tensor:
    """Check that ``images`` look like generator output and return them (clamped to [-1, 1] if asked).

    Parameters
    ----------
    images : Tensor, shape [N, 3, H, W]
        Floating-point images expected in ``[-1, 1]`` (a tolerance of 1e-3 is allowed).
    resolution : int, optional
        If given, require ``H == W == resolution``.
    clamp : bool
        Clamp values beyond [-1, 1] instead of refusing them: StyleGAN outputs are not bounded, and NVlabs'
        scripts and the Linking in Style reference clamp them when converting to images (count what was clamped
        with :func:`out_of_range`). NaN, infinities, dtype and shape are checked either way.

    Returns
    -------
    Tensor, shape [N, 3, H, W]
        ``images`` itself, or clamped to [-1, 1] with ``clamp=True``.

    Raises
    ------
    GeneratorOutputError
        If the type, dtype, shape or value range is wrong; the message gives what was observed.
    """
    expected = "expected generator output: a float tensor [N, 3, H, W] with values in [-1, 1]"
    if not isinstance(images, Tensor):
        raise GeneratorOutputError(f"{expected}; got {type(images).__name__}")
    if not images.is_floating_point():
        raise GeneratorOutputError(f"{expected}; got dtype {images.dtype} (convert integer images with "
                                   "x.float() / 127.5 - 1)")
    if images.ndim != 4 or images.shape[1] != 3:
        raise GeneratorOutputError(f"{expected}; got shape {list(images.shape)}")
    if resolution is not None and tuple(images.shape[2:]) != (resolution, resolution):
        raise GeneratorOutputError(f"expected images of {resolution}x{resolution} pixels; got shape "
                                   f"{list(images.shape)}")
    values = images.detach()
    finite = torch.isfinite(values)
    n_nan = int(torch.isnan(values).sum())
    n_inf = int(torch.isinf(values).sum())
    finite_values = values[finite]
    observed = (f"observed min {float(finite_values.min()):.4g}, max {float(finite_values.max()):.4g} over finite "
                "values" if finite_values.numel() else "no finite values")
    if n_nan or n_inf:
        raise GeneratorOutputError(f"{expected}; got {n_nan} NaN and {n_inf} infinite values out of "
                                   f"{values.numel()} ({observed})")
    if clamp:
        return images.clamp(-1.0, 1.0)
    n_outside = out_of_range(values)
    if n_outside:
        raise GeneratorOutputError(f"{expected}; {n_outside} of {values.numel()} values lie outside "
                                   f"[-1, 1] ({observed})")
    return images


def out_of_range(images: Tensor) -> int:
    """How many values of generator output lie beyond [-1, 1] (more than the rounding tolerance 1e-3)."""
    return int((images.detach().abs() > 1 + _RANGE_TOLERANCE).sum())


def one_hot(classes: Tensor, c_dim: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot encode class indices for a conditional generator.

    Parameters
    ----------
    classes : Tensor, shape [N]
        Integer class indices in ``[0, c_dim)``.
    c_dim : int
        Number of classes.
    dtype : torch.dtype
        Output dtype.

    Returns
    -------
    Tensor, shape [N, c_dim]
        One-hot rows, on the device of ``classes``.
    """
    classes = torch.as_tensor(classes)
    if classes.ndim != 1 or classes.is_floating_point() or classes.is_complex():
        raise ValueError(f"classes must be a 1-d integer tensor; got dtype {classes.dtype}, shape "
                         f"{list(classes.shape)}")
    if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= c_dim):
        raise IndexError(f"class indices must lie in [0, {c_dim}); got min {int(classes.min())}, max "
                         f"{int(classes.max())}")
    return F.one_hot(classes.long(), c_dim).to(dtype)
