"""Adapters that make existing generators speak the :class:`~linkviz.models.generator.Generator` protocol:
StyleGAN2 / StyleGAN3 / StyleGAN-XL objects (and their network pickles) and z-only generators such as DCGANs.
"""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from linkviz.devices import resolve_device
from linkviz.models.generator import check_generated, out_of_range
from linkviz.models.modules import module_device
from linkviz.models.network_pickle import read_networks

__all__ = ["StyleGANAdapter", "UnsafePickleError", "ZOnlyGenerator", "load_stylegan_pickle"]


class UnsafePickleError(RuntimeError):
    """Refusal to unpickle a file without the caller's explicit consent."""


def _check_ws(ws: Tensor, *, num_ws: int, w_dim: int) -> None:
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (num_ws, w_dim):
        raise ValueError(f"expected ws of shape [N, num_ws={num_ws}, w_dim={w_dim}]; got {list(ws.shape)}")


def _check_z(z: Tensor, *, z_dim: int) -> None:
    if z.ndim != 2 or z.shape[1] != z_dim:
        raise ValueError(f"expected z of shape [N, z_dim={z_dim}]; got {list(z.shape)}")


def _truncate(ws: Tensor, centers: Tensor, psi: float) -> Tensor:
    """Pull ``ws [N, num_ws, w_dim]`` toward ``centers [N, w_dim]``: ``center + psi * (w - center)``."""
    if psi == 1:
        return ws
    centers = centers[:, None, :].to(ws.dtype)
    return centers + psi * (ws - centers)


class StyleGANAdapter:
    """Adapter for StyleGAN2 / StyleGAN3 / StyleGAN-XL generator objects.

    Truncation is applied by the adapter, toward the class's own average w, so the three families behave the
    same whether their ``mapping.w_avg`` buffer is one row ``[w_dim]`` or per class ``[c_dim, w_dim]``.

    Parameters
    ----------
    G : nn.Module
        A generator with ``mapping``, ``synthesis``, ``z_dim``, ``w_dim``, ``c_dim``, ``num_ws`` and
        ``img_resolution`` (e.g. ``G_ema`` from a network pickle).
    """

    def __init__(self, G: nn.Module) -> None:
        missing = [a for a in ("mapping", "synthesis", "z_dim", "w_dim", "c_dim", "num_ws", "img_resolution")
                   if not hasattr(G, a)]
        if missing:
            raise TypeError(f"{type(G).__name__} does not look like a StyleGAN generator; missing {missing}")
        if not hasattr(G.mapping, "w_avg"):
            raise TypeError("G.mapping has no w_avg buffer; truncation needs the average w")
        self.G = G
        self.z_dim = int(G.z_dim)
        self.w_dim = int(G.w_dim)
        self.c_dim = int(G.c_dim)
        self.num_ws = int(G.num_ws)
        self.img_resolution = int(G.img_resolution)
        self._pass_noise_mode = True
        self.values_rendered = 0
        self.values_clamped = 0

    @property
    def synthesis_module(self) -> nn.Module:
        """``G.synthesis``, the module that ``synthesis_layer_names`` refer to."""
        return self.G.synthesis

    @property
    def device(self) -> torch.device:
        """Device of the generator's parameters."""
        return module_device(self.G)

    def to(self, device: torch.device | str) -> StyleGANAdapter:
        """Move the generator to ``device`` and return ``self``."""
        self.G.to(device)
        return self

    @property
    def w_avg(self) -> Tensor:
        """Average w per class, shape ``[max(c_dim, 1), w_dim]`` (a single average is repeated per class)."""
        w_avg = self.G.mapping.w_avg
        if w_avg.ndim == 1:
            w_avg = w_avg[None]
        return w_avg.expand(max(self.c_dim, 1), self.w_dim)

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0) -> Tensor:
        """Map latents to ws, truncating toward each example's class average.

        Parameters
        ----------
        z : Tensor, shape [N, z_dim]
            Latents.
        c : Tensor, shape [N, c_dim], optional
            One-hot classes; required when ``c_dim > 0``. The class of a row is its argmax.
        truncation_psi : float
            ``w_avg[c] + psi * (w - w_avg[c])``; 1 leaves ws unchanged, 0 gives the class average.

        Returns
        -------
        Tensor, shape [N, num_ws, w_dim]
        """
        _check_z(z, z_dim=self.z_dim)
        if c is None:
            if self.c_dim > 0:
                raise ValueError(f"this generator is class-conditional (c_dim={self.c_dim}); pass one-hot c, "
                                 "e.g. linkviz.models.one_hot(classes, c_dim)")
            c = z.new_zeros(z.shape[0], 0)
        elif c.ndim != 2 or tuple(c.shape) != (z.shape[0], self.c_dim):
            raise ValueError(f"expected c of shape [N={z.shape[0]}, c_dim={self.c_dim}]; got {list(c.shape)}")
        ws = self.G.mapping(z, c, truncation_psi=1)
        _check_ws(ws, num_ws=self.num_ws, w_dim=self.w_dim)
        rows = c.argmax(dim=1) if self.c_dim > 0 else torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return _truncate(ws, self.w_avg[rows.to(self.w_avg.device)].to(ws.device), truncation_psi)

    def synthesis(self, ws: Tensor) -> Tensor:
        """Render ``ws [N, num_ws, w_dim]`` to images ``[N, 3, R, R]`` with constant noise, clamped to ``[-1, 1]``
        (counted in :attr:`clamped_fraction`)."""
        _check_ws(ws, num_ws=self.num_ws, w_dim=self.w_dim)
        if self._pass_noise_mode:
            try:
                images = self.G.synthesis(ws, noise_mode="const")
            except TypeError as error:
                if "noise_mode" not in str(error):
                    raise
                self._pass_noise_mode = False
        if not self._pass_noise_mode:
            images = self.G.synthesis(ws)
        clamped = check_generated(images, resolution=self.img_resolution, clamp=True)
        self.values_rendered += images.numel()
        self.values_clamped += out_of_range(images)
        return clamped

    @property
    def clamped_fraction(self) -> float:
        """Share of the output values rendered so far that lay beyond [-1, 1] and were clamped (StyleGAN output
        is unbounded; the references clamp it too). Large shares mean latents far from the training set."""
        return self.values_clamped / self.values_rendered if self.values_rendered else 0.0

    def synthesis_layer_names(self) -> list[str]:
        """Names of the direct children of ``synthesis_module`` (any ``named_modules`` name also works)."""
        return [name for name, _ in self.synthesis_module.named_children()]


class ZOnlyGenerator:
    """Adapter for generators that take only a latent z, such as DCGANs.

    The mapping is the identity (``ws = z[:, None, :]``, so ``num_ws = 1`` and ``w_dim = z_dim``) and
    truncation pulls toward ``w_avg = 0``.

    Parameters
    ----------
    module : nn.Module
        Maps ``z`` to images in ``[-1, 1]``.
    z_dim : int
        Latent size.
    img_resolution : int
        Output side length.
    z_shape : {"vector", "conv"}
        Feed ``z`` as ``[N, z_dim]`` or as ``[N, z_dim, 1, 1]`` (DCGAN transposed-convolution style).
    """

    c_dim = 0
    num_ws = 1

    def __init__(
        self,
        module: nn.Module,
        *,
        z_dim: int,
        img_resolution: int,
        z_shape: Literal["vector", "conv"] = "vector",
    ) -> None:
        if z_shape not in ("vector", "conv"):
            raise ValueError(f"z_shape must be 'vector' or 'conv'; got {z_shape!r}")
        self.module = module
        self.z_dim = int(z_dim)
        self.w_dim = int(z_dim)
        self.img_resolution = int(img_resolution)
        self.z_shape = z_shape

    @property
    def synthesis_module(self) -> nn.Module:
        """The wrapped module."""
        return self.module

    @property
    def device(self) -> torch.device:
        """Device of the module's parameters."""
        return module_device(self.module)

    def to(self, device: torch.device | str) -> ZOnlyGenerator:
        """Move the module to ``device`` and return ``self``."""
        self.module.to(device)
        return self

    @property
    def w_avg(self) -> Tensor:
        """Zeros of shape ``[1, z_dim]``."""
        return torch.zeros(1, self.w_dim, device=self.device)

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0) -> Tensor:
        """Return ``truncation_psi * z[:, None, :]``, shape [N, 1, z_dim]; ``c`` must be None or [N, 0]."""
        _check_z(z, z_dim=self.z_dim)
        if c is not None and c.numel() > 0:
            raise ValueError(f"this generator is unconditional; got c of shape {list(c.shape)}")
        ws = z[:, None, :]
        return _truncate(ws, ws.new_zeros(z.shape[0], self.w_dim), truncation_psi)

    def synthesis(self, ws: Tensor) -> Tensor:
        """Render ``ws [N, 1, z_dim]`` to images ``[N, 3, R, R]`` in ``[-1, 1]``."""
        _check_ws(ws, num_ws=1, w_dim=self.w_dim)
        z = ws[:, 0]
        if self.z_shape == "conv":
            z = z[:, :, None, None]
        return check_generated(self.module(z), resolution=self.img_resolution)

    def synthesis_layer_names(self) -> list[str]:
        """Names of the direct children of the module (any ``named_modules`` name also works)."""
        return [name for name, _ in self.module.named_children()]


def load_stylegan_pickle(
    path: str | PathLike[str],
    *,
    allow_unpickle: bool = False,
    key: str = "G_ema",
    device: torch.device | str = "cpu",
) -> StyleGANAdapter:
    """Load a generator from a StyleGAN2 / StyleGAN3 / StyleGAN-XL network pickle.

    Network pickles are dicts with keys ``'G'``, ``'D'``, ``'G_ema'``, ``'training_set_kwargs'`` and
    ``'augment_pipe'``. Unpickling runs code stored in the file, and the modules need the authors' packages
    ``dnnlib`` and ``torch_utils`` importable, so it happens only with ``allow_unpickle=True``. Networks other
    than ``key`` whose code cannot be imported are skipped (:mod:`linkviz.models.network_pickle`).

    Parameters
    ----------
    path : str or PathLike
        The ``.pkl`` file.
    allow_unpickle : bool
        Consent to unpickling; only use files from sources you trust.
    key : str
        Which network of the dict to load.
    device : torch.device or str
        Where to put the generator; ``"auto"`` takes the best device present (CUDA, then MPS, then CPU).

    Returns
    -------
    StyleGANAdapter
        The generator in eval mode with gradients of its parameters switched off.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsafePickleError
        If ``allow_unpickle`` is not True.
    ImportError
        If the code of network ``key`` is not importable (the message names the module that failed and what
        provides it). Only network ``key`` must rebuild: another network of the snapshot whose code is missing
        (StyleGAN-XL's ``D`` without ``timm``) is left unbuilt.
    KeyError
        If ``key`` is not in the pickled dict.
    TypeError
        If the pickle is not a dict, or ``key`` holds something other than a generator module (the message
        names the type found and the key).
    ValueError
        If the file is not a pickle at all (a safetensors file, garbage, a truncated download).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no StyleGAN network pickle at {path}")
    if allow_unpickle is not True:
        raise UnsafePickleError(
            f"refusing to unpickle {path}: unpickling runs arbitrary code stored in the file, and StyleGAN "
            "pickles also need the authors' code (dnnlib, torch_utils) importable. If you trust the file, "
            "put the StyleGAN repository on sys.path and call load_stylegan_pickle(path, allow_unpickle=True)."
        )
    warnings.warn(f"unpickling {path}: this runs code stored in the file", UserWarning, stacklevel=2)
    with path.open("rb") as file:
        networks = read_networks(file, path=path, key=key)
    G = networks[key]
    if not isinstance(G, nn.Module) or not all(hasattr(G, name) for name in ("mapping", "synthesis")):
        found = {str(name): type(value).__name__ for name, value in networks.items()}
        raise TypeError(f"{path}[{key!r}] is a {type(G).__name__}, not a StyleGAN generator (an nn.Module with "
                        f"mapping and synthesis); the pickle holds {found}: pass key= the generator's key "
                        "(usually 'G_ema')")
    G.eval().requires_grad_(False).to(resolve_device(device))
    return StyleGANAdapter(G)
