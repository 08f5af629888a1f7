"""The toy world's class-conditional generator, in the StyleGAN calling convention.

``mapping(z, c, truncation_psi)`` turns a latent into the factor record the
renderer would draw (``u = Phi(z)``, see :mod:`~linkviz.worlds.toy.factors`),
encodes it as a factor vector and maps that through an MLP to ``w``; the
``ws`` tensor repeats ``w`` for each of the ``num_ws`` synthesis layers.
``synthesis(ws)`` is a style-modulated convolutional decoder from a
``w``-dependent 4 x 4 tensor to a 64 x 64 image in [-1, 1].  Because the
mapping is factor-supervised, every generated sample has a known ground truth:
:meth:`ToyGenerator.factors` returns it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .factors import CLASS_NAMES, FACTOR_DIM, N_UNIFORMS, FactorTable, factor_vector, factors_from_uniform
from .patterns import N_PLANES, PATTERN_DIM, pattern_geometry, pattern_planes

#: Width of the learned part of w; the pattern geometry (PATTERN_DIM numbers) follows it, so w_dim = W_DIM.
LEARNED_W_DIM = 128
#: (resolution, channels, number of modulated convolutions) per synthesis block.
BLOCKS: tuple[tuple[int, int, int], ...] = ((8, 192, 1), (16, 128, 1), (32, 64, 2), (64, 32, 2))
FOURIER_FEATURES = 12
#: Length of the vector the mapping network is conditioned on: factors, then pattern geometry.
CONDITIONING_DIM = FACTOR_DIM + PATTERN_DIM
W_DIM = LEARNED_W_DIM + PATTERN_DIM
#: Synthesis blocks at this resolution and above receive the analytic pattern planes.
PATTERN_MIN_RESOLUTION = 16


def conditioning_vector(table: FactorTable) -> np.ndarray:
    """What the mapping network reads: :func:`factor_vector` and :func:`pattern_geometry`, shape (N, CONDITIONING_DIM)."""
    return np.concatenate([factor_vector(table), pattern_geometry(table)], axis=1)


class ToyMapping(nn.Module):
    """z, c -> factor record -> conditioning vector -> w, with per-class truncation.

    ``w`` is the output of an MLP over the conditioning vector followed by the
    pattern geometry itself (see :mod:`~linkviz.worlds.toy.patterns`), which the
    synthesis reads back to draw textures and petals in place.

    Parameters
    ----------
    w_dim : int
        Size of w.
    num_ws : int
        Number of synthesis layers that each receive a copy of w.
    """

    def __init__(self, *, w_dim: int = W_DIM, num_ws: int) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = N_UNIFORMS, len(CLASS_NAMES), w_dim, num_ws
        self.net = nn.Sequential(
            nn.Linear(CONDITIONING_DIM, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, w_dim - PATTERN_DIM),
        )
        self.register_buffer("w_avg", torch.zeros(self.c_dim, w_dim))

    def factors(self, z: torch.Tensor, c: torch.Tensor) -> FactorTable:
        """The factor records of latents z with one-hot classes c (the sample's ground truth)."""
        u = torch.special.ndtr(z.detach().double()).clamp(0.0, 1.0 - 1e-9).cpu().numpy()
        return factors_from_uniform(c.argmax(1).cpu().numpy(), u)

    def embed(self, conditioning: torch.Tensor) -> torch.Tensor:
        """w from conditioning vectors, shape (N, CONDITIONING_DIM) -> (N, w_dim)."""
        return torch.cat([self.net(conditioning), conditioning[:, -PATTERN_DIM:]], 1)

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """ws, shape (N, num_ws, w_dim), from z (N, z_dim) and one-hot c (N, c_dim)."""
        vectors = torch.from_numpy(conditioning_vector(self.factors(z, c))).to(z.device)
        w = self.embed(vectors)
        if truncation_psi != 1.0:
            center = self.w_avg[c.argmax(1)]
            w = center + truncation_psi * (w - center)
        return w[:, None, :].expand(-1, self.num_ws, -1)


class ModulatedConv(nn.Module):
    """3x3 convolution, instance norm, per-sample scale and shift from w, LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.style = nn.Linear(w_dim, 2 * out_channels)
        nn.init.zeros_(self.style.weight)
        nn.init.zeros_(self.style.bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, shift = self.style(w)[:, :, None, None].chunk(2, dim=1)
        return F.leaky_relu(F.instance_norm(self.conv(x)) * (1 + scale) + shift, 0.2)


class FourierFeatures(nn.Module):
    """Plane waves sin(2 pi (f . p) + phase) whose frequencies and phases depend on w.

    Gives the decoder a direct way to draw oriented stripes and dot lattices.
    """

    def __init__(self, n_features: int, w_dim: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.frequency = nn.Linear(w_dim, 2 * n_features)
        self.phase = nn.Linear(w_dim, n_features)
        nn.init.normal_(self.frequency.weight, std=0.02)
        nn.init.normal_(self.phase.weight, std=0.02)
        with torch.no_grad():
            angles = torch.linspace(0, math.pi, n_features + 1)[:-1]
            cycles = torch.linspace(3.0, 7.0, n_features)
            self.frequency.bias.copy_(torch.stack([cycles * angles.cos(), cycles * angles.sin()], 1).flatten())

    def forward(self, w: torch.Tensor, resolution: int) -> torch.Tensor:
        """Features of shape (N, n_features, resolution, resolution)."""
        grid = torch.linspace(-0.5, 0.5, resolution, device=w.device)
        rows, cols = torch.meshgrid(grid, grid, indexing="ij")
        freq = self.frequency(w).view(-1, self.n_features, 2, 1, 1)
        arg = freq[:, :, 0] * rows + freq[:, :, 1] * cols + self.phase(w)[:, :, None, None]
        return torch.sin(2 * math.pi * arg)


def _coordinates(n: int, resolution: int, device: torch.device) -> torch.Tensor:
    grid = torch.linspace(-1.0, 1.0, resolution, device=device)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")
    return torch.stack([rows, cols])[None].expand(n, -1, -1, -1)


class SynthesisBlock(nn.Module):
    """Upsample x2, append coordinates (and Fourier features, pattern planes), then modulated convolutions."""

    def __init__(self, in_channels: int, out_channels: int, n_convs: int, w_dim: int, fourier: int,
                 patterns: bool) -> None:
        super().__init__()
        self.fourier = FourierFeatures(fourier, w_dim) if fourier else None
        self.patterns = patterns
        extra = 2 + fourier + (N_PLANES if patterns else 0)
        self.convs = nn.ModuleList(
            [ModulatedConv(in_channels + extra if i == 0 else out_channels, out_channels, w_dim)
             for i in range(n_convs)])

    def forward(self, x: torch.Tensor, ws: list[torch.Tensor], geometry: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        inputs = [x, _coordinates(len(x), x.shape[-1], x.device)]
        if self.fourier is not None:
            inputs.append(self.fourier(ws[0], x.shape[-1]))
        if self.patterns:
            inputs.append(pattern_planes(geometry, x.shape[-1]))
        x = torch.cat(inputs, 1)
        for conv, w in zip(self.convs, ws):
            x = conv(x, w)
        return x


class ToySynthesis(nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, 3, 64, 64) in [-1, 1].

    Hookable layers: ``input`` (4 x 4), ``b8``, ``b16``, ``b32``, ``b64`` and
    ``torgb``; each block's convolutions are ``b<res>.convs.<i>``.  The last
    PATTERN_DIM entries of w are the texture and petal geometry (see
    :mod:`~linkviz.worlds.toy.patterns`); blocks from 16 x 16 up draw with it.
    """

    def __init__(self, *, w_dim: int = W_DIM) -> None:
        super().__init__()
        self.w_dim = w_dim
        first_channels = 256
        self.input = nn.Linear(w_dim, first_channels * 16)
        blocks, in_channels = {}, first_channels
        for resolution, channels, n_convs in BLOCKS:
            fourier = FOURIER_FEATURES if resolution >= 32 else 0
            blocks[f"b{resolution}"] = SynthesisBlock(in_channels, channels, n_convs, w_dim, fourier,
                                                      patterns=resolution >= PATTERN_MIN_RESOLUTION)
            in_channels = channels
        self.blocks = nn.ModuleDict(blocks)
        self.torgb = nn.Conv2d(in_channels, 3, 1)
        self.num_ws = 1 + sum(n for _, _, n in BLOCKS)
        self.img_resolution = BLOCKS[-1][0]

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = F.leaky_relu(self.input(ws[:, 0]).view(len(ws), -1, 4, 4), 0.2)
        geometry = ws[:, 0, -PATTERN_DIM:]
        index = 1
        for (_, _, n_convs), block in zip(BLOCKS, self.blocks.values()):
            x = block(x, [ws[:, index + i] for i in range(n_convs)], geometry)
            index += n_convs
        return torch.tanh(self.torgb(x))


class ToyGenerator(nn.Module):
    """Class-conditional toy-world generator with StyleGAN's attributes and calling convention."""

    def __init__(self, *, w_dim: int = W_DIM) -> None:
        super().__init__()
        self.synthesis = ToySynthesis(w_dim=w_dim)
        self.mapping = ToyMapping(w_dim=w_dim, num_ws=self.synthesis.num_ws)
        self.z_dim, self.c_dim, self.w_dim = self.mapping.z_dim, self.mapping.c_dim, w_dim
        self.num_ws, self.img_resolution = self.synthesis.num_ws, self.synthesis.img_resolution

    @property
    def w_avg(self) -> torch.Tensor:
        """Per-class average w, shape (c_dim, w_dim)."""
        return self.mapping.w_avg

    @property
    def synthesis_module(self) -> nn.Module:
        return self.synthesis

    def synthesis_layer_names(self) -> list[str]:
        """Dotted names (relative to ``synthesis``) of the spatial feature maps, 8 x 8 to 64 x 64."""
        return [f"blocks.b{res}" for res, _, _ in BLOCKS]

    def factors(self, z: torch.Tensor, c: torch.Tensor) -> FactorTable:
        """Ground-truth factor records of the samples with latents z and one-hot classes c."""
        return self.mapping.factors(z, c)

    @torch.no_grad()
    def update_w_avg(self, *, samples_per_class: int, seed: int) -> None:
        """Set each class's average w from ``samples_per_class`` draws of the prior."""
        generator = torch.Generator().manual_seed(seed)
        device = self.w_avg.device
        for c in range(self.c_dim):
            z = torch.randn(samples_per_class, self.z_dim, generator=generator).to(device)
            onehot = F.one_hot(torch.full((samples_per_class,), c, device=device), self.c_dim).float()
            self.mapping.w_avg[c] = self.mapping(z, onehot)[:, 0].mean(0)

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """Images (N, 3, 64, 64) in [-1, 1] from z (N, z_dim) and one-hot c (N, c_dim)."""
        return self.synthesis(self.mapping(z, c, truncation_psi))


def grow_state_dict(module: nn.Module, old_state: dict[str, torch.Tensor]) -> list[str]:
    """Load weights of an earlier, narrower version of a network into ``module``.

    Tensors of equal shape are copied; a tensor that has grown along its
    input dimension (new conditioning entries, new input planes) gets the old
    values in its leading slice and zeros elsewhere, so the grown network
    computes exactly what the old one did until training uses the new inputs.
    Tensors the old state lacks keep their fresh initialisation.

    Returns
    -------
    list of str
        Names of the tensors that grew or were new.
    """
    state, changed = module.state_dict(), []
    for name, tensor in state.items():
        old = old_state.get(name)
        if old is not None and old.shape == tensor.shape:
            tensor.copy_(old)
        elif old is not None and old.ndim == tensor.ndim and old.shape[0] == tensor.shape[0] \
                and old.shape[2:] == tensor.shape[2:] and old.shape[1] < tensor.shape[1]:
            tensor.zero_()
            tensor[:, :old.shape[1]] = old
            changed.append(name)
        elif old is not None:
            raise ValueError(f"cannot grow {name!r} from shape {tuple(old.shape)} to {tuple(tensor.shape)}")
        else:
            changed.append(name)
    module.load_state_dict(state)
    return changed


def uniform_to_latent(u: np.ndarray) -> np.ndarray:
    """The latent z with Phi(z) = u, so ``mapping`` reproduces a given factor record."""
    from scipy.special import ndtri

    return ndtri(np.clip(u, 1e-9, 1 - 1e-9)).astype(np.float32)
