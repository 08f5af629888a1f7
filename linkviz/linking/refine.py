"""A link refined by feature inversion: start at the linear link's latent, then fit the generator's image to r.

A linear link ``w0 = link(r)`` is only a first guess where the map from r back to the latent is far from linear
(the faces DCGAN and FER). :class:`RefinedLink` takes a fixed number of Adam steps on the latent from there,
minimising the standardised feature error of the regenerated image,

    z_{k+1} = Adam step on  sum_i ((r(G(z)) - r)_i / s_i)^2 / D,      then  z <- rho z / |z|  (with a latent_norm)

with ``s`` the units' standard deviations over the link's training pairs and ``rho`` the linear link's
``latent_norm`` (so refined latents stay on a Gaussian prior's typical set). r -> w stays a deterministic function
of r (fixed steps, fixed step size, fixed start), computed in batches; it is not differentiable in r (that would
back-propagate through every step), so the counterfactual search keeps the linear link. Reproducible for the same
rows, batch size and threads: another batch size runs other convolution kernels, and Adam's normalised steps
amplify their round-off in latent coordinates whose gradient is near zero (measured up to 0.2 per coordinate
between a batch of 4 and one of 64 rows; the class agreement above is a property of the whole set, not of a row).

Measured on the faces world (420 training pairs, 300 held-out pairs of seed 9, majority class 0.48; CPU, 2 loaded
cores): ridge link 0.45 class agreement, w cosine 0.28; ridge + 20 steps (step size 0.1) 0.68, w cosine 0.30, no
G(0)-like textures, about 1.1-1.3 s per image; ridge + 40 steps (the default) 0.73 on the first 150 of those pairs
(majority 0.45 there: +0.28, binomial SE 0.036), w cosine 0.33; starting from the cycle-refitted link instead
(:func:`~linkviz.linking.fit_cycle_link`) 0.59; 40 steps on 128 pairs of seed 9: 0.77 (majority 0.45, ridge 0.49).
One step costs a generator and a classifier pass forward and back: about 22 ms per 64-px face on one CPU thread
(the classifier's convolutions backward are a third of it).

Edits: ``to_w(r_edited, start=w_original)`` starts from the original's refined latent instead of the linear
link's guess, so the face, pose and light stay and the expression follows the edit
(:func:`linkviz.counterfactual.render_through_refined_link`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from linkviz.linking.link import LinearLink
from linkviz.models import Classifier, Generator

__all__ = ["RefinedLink"]


@dataclass(frozen=True, eq=False)
class RefinedLink:
    """``w = refine(link(r))``: a linear link followed by ``steps`` steps of feature inversion.

    Attributes
    ----------
    link : LinearLink
        The starting point (its ``latent_norm``, if any, is kept along the steps).
    generator : Generator
        Frozen; ``synthesis(ws [N, num_ws, w_dim]) -> images``.
    classifier : Classifier
        Frozen; ``forward_generated(images) -> (logits, r [N, D])``.
    unit_scale : ndarray of float32, shape (D,)
        Per-unit scale of the feature error (the units' standard deviation over the training pairs).
    steps : int
        Adam steps per latent (>= 0; 0 is the linear link).
    step_size : float
        Adam's learning rate on the latent.
    batch_size : int
        Latents refined together.
    """

    link: LinearLink
    generator: Generator
    classifier: Classifier
    unit_scale: np.ndarray
    steps: int = 40
    step_size: float = 0.1
    batch_size: int = 64

    def __post_init__(self) -> None:
        scale = np.asarray(self.unit_scale, dtype=np.float32)
        if scale.shape != (self.link.r_dim,) or not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(f"unit_scale must be {self.link.r_dim} positive finite values; got shape {scale.shape}")
        if self.steps < 0 or self.step_size <= 0 or self.batch_size < 1:
            raise ValueError(f"steps must be >= 0, step_size > 0 and batch_size >= 1; got {self.steps}, "
                             f"{self.step_size}, {self.batch_size}")
        object.__setattr__(self, "unit_scale", scale)

    @classmethod
    def from_pairs(cls, link: LinearLink, generator: Generator, classifier: Classifier, r: np.ndarray, *,
                   steps: int = 40, step_size: float = 0.1, batch_size: int = 64) -> RefinedLink:
        """A refined link whose feature error is scaled by the standard deviation of ``r [N, D]`` per unit."""
        scale = np.asarray(r, dtype=np.float64).std(axis=0)
        scale = np.where(scale > 1e-3, scale, 1e-3)
        return cls(link=link, generator=generator, classifier=classifier, unit_scale=scale, steps=steps,
                   step_size=step_size, batch_size=batch_size)

    @property
    def r_dim(self) -> int:
        return self.link.r_dim

    @property
    def w_dim(self) -> int:
        return self.link.w_dim

    @property
    def latent_norm(self) -> float | None:
        return self.link.latent_norm

    def _refine(self, r: Tensor, start: Tensor | None) -> Tensor:
        """Refined latents of one batch ``r [n, D]`` from ``start [n, w_dim]`` (default the linear link's)."""
        scale = torch.as_tensor(self.unit_scale, device=r.device, dtype=torch.float32)
        target = r.detach().float()
        first = self.link.to_w(target) if start is None else start.to(device=r.device, dtype=torch.float32)
        z = self.link.project(first.detach()).clone().requires_grad_(True)
        optimiser = torch.optim.Adam([z], lr=self.step_size)
        with torch.inference_mode(False), torch.enable_grad():
            for _ in range(self.steps):
                images = self.generator.synthesis(z[:, None, :].expand(-1, self.generator.num_ws, -1))
                features = self.classifier.forward_generated(images, grad=True)[1].to(r.device)
                loss = ((features - target) / scale).pow(2).mean(dim=1).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    z.copy_(self.link.project(z))
        return z.detach()

    def to_w(self, r: Tensor, start: Tensor | None = None) -> Tensor:
        """w (N, w_dim) from r (N, D), refined ``batch_size`` rows at a time; on r's device, not differentiable.

        Gradients in r would have to pass through every refinement step; the counterfactual search uses the
        linear :attr:`link` and renders its result through this one instead
        (:func:`linkviz.counterfactual.render_through_refined_link`).

        Parameters
        ----------
        r : Tensor, shape (N, D)
        start : Tensor, shape (N, w_dim), optional
            Latents to start the steps from instead of ``link(r)`` (projected to the latent norm first). An
            edited r started from the original's refined latent stays close to that image (same face, pose and
            light) and changes what the edit asks for.
        """
        if r.ndim != 2 or r.shape[1] != self.r_dim:
            raise ValueError(f"r must have shape (N, {self.r_dim}), got {tuple(r.shape)}")
        if start is not None and tuple(start.shape) != (r.shape[0], self.w_dim):
            raise ValueError(f"start must have shape ({r.shape[0]}, {self.w_dim}) like r's rows; got "
                             f"{tuple(start.shape)}")
        starts = [None] * len(r.split(self.batch_size)) if start is None else start.split(self.batch_size)
        parts = [self._refine(part, first) for part, first in zip(r.split(self.batch_size), starts)]
        return torch.cat(parts).to(r.dtype)

    def predict(self, r: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        """w (N, w_dim) from r (N, D) as float32 numpy (:meth:`to_w` on the classifier's device), optionally
        from ``start`` latents (N, w_dim)."""
        device = self.classifier.device
        r = torch.as_tensor(np.asarray(r, dtype=np.float32), device=device)
        first = None if start is None else torch.as_tensor(np.asarray(start, dtype=np.float32), device=device)
        return self.to_w(r, first).cpu().numpy()
