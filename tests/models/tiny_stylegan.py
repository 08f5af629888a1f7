"""A tiny StyleGAN-like generator (importable, so instances can be pickled like network pickles)."""

import torch
from torch import nn


class TinyMapping(nn.Module):
    """ws[n, i] = z @ A + c @ B, repeated over num_ws; w_avg per class ([c_dim, w_dim]) or shared ([w_dim])."""

    def __init__(self, *, z_dim: int, w_dim: int, c_dim: int, num_ws: int, per_class: bool) -> None:
        super().__init__()
        self.num_ws = num_ws
        g = torch.Generator().manual_seed(0)
        self.register_buffer("A", torch.randn(z_dim, w_dim, generator=g))
        self.register_buffer("B", torch.randn(max(c_dim, 1), w_dim, generator=g))
        shape = (c_dim, w_dim) if per_class else (w_dim,)
        self.register_buffer("w_avg", torch.randn(shape, generator=g))
        self.psi_seen: list[float] = []

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        self.psi_seen.append(truncation_psi)
        w = z @ self.A
        if c.shape[1] > 0:
            w = w + c @ self.B
        return w[:, None, :].repeat(1, self.num_ws, 1)


class TinySynthesis(nn.Module):
    """img = tanh(b4(mean over ws)) reshaped to [N, 3, R, R]; ``fill`` forces a constant output value."""

    def __init__(self, *, w_dim: int, resolution: int, fill: float | None = None) -> None:
        super().__init__()
        self.resolution = resolution
        self.fill = fill
        self.b4 = nn.Linear(w_dim, 3 * resolution * resolution)
        self.noise_modes: list[str] = []

    def forward(self, ws, noise_mode="random"):
        self.noise_modes.append(noise_mode)
        img = torch.tanh(self.b4(ws.mean(dim=1))).view(-1, 3, self.resolution, self.resolution)
        if self.fill is not None:
            img = torch.full_like(img, self.fill)
        return img


class TinySynthesisNoKwarg(TinySynthesis):
    """Synthesis whose forward takes no noise_mode."""

    def forward(self, ws):
        return super().forward(ws)


class TinyG(nn.Module):
    def __init__(self, *, z_dim=4, w_dim=3, c_dim=2, num_ws=2, resolution=4, per_class=True, fill=None,
                 noise_kwarg=True) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.c_dim, self.num_ws = z_dim, w_dim, c_dim, num_ws
        self.img_resolution = resolution
        self.mapping = TinyMapping(z_dim=z_dim, w_dim=w_dim, c_dim=c_dim, num_ws=num_ws, per_class=per_class)
        synthesis = TinySynthesis if noise_kwarg else TinySynthesisNoKwarg
        self.synthesis = synthesis(w_dim=w_dim, resolution=resolution, fill=fill)

    def forward(self, z, c, truncation_psi=1):
        return self.synthesis(self.mapping(z, c, truncation_psi=truncation_psi))
