"""Keeping a counterfactual realistic: a penalty on its linked latent's distance and a projection back inside.

A counterfactual ``r' = clip(r - s)`` renders the image of ``w' = link(r')``. Where ``w'`` lies far from the
latents the generator's mapping produces (:class:`~linkviz.counterfactual.LatentRealism`), the generator paints
something it was never trained to paint, and the classifier's verdict on it says nothing about real images. Two
tools keep the search inside the realistic ellipsoid ``distance(w') <= threshold``:

- :func:`realism_penalty`, a differentiable squared hinge on the Mahalanobis distance beyond a fraction of the
  threshold, added to the loss so the gradient turns back before the boundary;
- :func:`project_inside`, applied after each step: the latents beyond the threshold are moved onto a slightly
  smaller ellipsoid (the nearest point in the whitened space) and the shift is changed by the smallest change of
  r that the link maps to that move (the link's pseudo-inverse), repeated a few times because ``clip`` can undo
  part of it; a shift still beyond the threshold is then shortened along its path ``clip(r - t s)``, ``t < 1``,
  toward the original (realistic when the original is).
"""

from __future__ import annotations

import torch
from torch import Tensor

from linkviz.counterfactual.realism import LatentRealism
from linkviz.linking.link import LinearLink
from linkviz.models.classifier import Classifier

__all__ = ["project_inside", "realism_penalty", "realism_preconditioner"]

#: Fraction of the threshold where the penalty starts and onto which the projection moves latents.
INSIDE = 0.9


def realism_penalty(realism: LatentRealism, w: Tensor, *, start: float = INSIDE) -> Tensor:
    """``relu(distance(w) / threshold - start) ** 2`` per latent: zero well inside, growing beyond.

    Parameters
    ----------
    realism : LatentRealism
    w : Tensor, shape [N, w_dim]
        Linked latents; differentiable.
    start : float
        Fraction of the threshold where the penalty starts.

    Returns
    -------
    Tensor, shape [N]
    """
    return torch.relu(realism.distance_tensor(w) / realism.threshold - start) ** 2


def realism_preconditioner(link: LinearLink, realism: LatentRealism, *, damping: float = 1.0,
                           device: torch.device | str = "cpu") -> Tensor:
    """``(A^T P A + damping I)^-1``: steps in r measured by the change they make to the latent's realism score.

    ``A`` is the link's weight and ``P`` the realism model's precision, so ``A^T P A`` is the Mahalanobis metric
    of the linked latent pulled back to r. A gradient multiplied by this matrix is the steepest descent per unit
    of that metric (a natural-gradient step): it prefers changes the generator's latents vary along anyway (on the
    toy world, the background colour) over atypical ones of the same Euclidean size. ``damping`` (in the metric's
    units; its largest eigenvalue is a few hundred on the toy world) bounds the step along directions the link
    does not render, whose metric is zero.

    Returns
    -------
    Tensor, shape [D, D]
        Symmetric positive definite, float32 on ``device``.
    """
    if not damping > 0:
        raise ValueError(f"damping must be positive; got {damping}")
    weight = torch.as_tensor(link.weight, dtype=torch.float64)
    metric = weight.T @ torch.as_tensor(realism.precision, dtype=torch.float64) @ weight
    inverse = torch.linalg.inv(metric + damping * torch.eye(metric.shape[0], dtype=torch.float64))
    return inverse.to(device=device, dtype=torch.float32)


def _pseudo_inverse(link: LinearLink, like: Tensor) -> Tensor:
    """The link weight's pseudo-inverse, shape [D, w_dim], on ``like``'s device and dtype."""
    weight = torch.as_tensor(link.weight, dtype=torch.float64)
    return torch.linalg.pinv(weight).to(device=like.device, dtype=like.dtype)


@torch.no_grad()
def project_inside(link: LinearLink, classifier: Classifier, realism: LatentRealism, r: Tensor, shift: Tensor, *,
                   radius: float = INSIDE, rounds: int = 3, halvings: int = 12) -> Tensor:
    """Shifts whose linked counterfactual lies beyond the realism threshold, changed so that it lies inside.

    Parameters
    ----------
    link : LinearLink
    classifier : Classifier
        Its ``spec.clip_penultimate`` maps ``r - s`` to the counterfactual.
    realism : LatentRealism
    r, shift : Tensor, shape [N, D]
        Original activations and shifts.
    radius : float
        Fraction of the threshold onto which latents beyond the threshold are moved.
    rounds : int
        Pseudo-inverse corrections.
    halvings : int
        Bisection steps of the shortening along the path, for shifts the corrections leave beyond.

    Returns
    -------
    Tensor, shape [N, D]
        The shifts; rows already inside are returned unchanged.
    """
    clip, threshold = classifier.spec.clip_penultimate, realism.threshold
    shift = shift.clone()
    pinv = None
    for _ in range(rounds):
        r_new = clip(r - shift)
        affine = link.affine(r_new)
        w = link.project(affine)
        beyond = realism.distance_tensor(w) > threshold
        if not beyond.any():
            return shift
        pinv = _pseudo_inverse(link, r) if pinv is None else pinv
        goal = realism.pull_inside(w[beyond], radius=radius * threshold)
        if link.latent_norm is not None:  # the affine latent that projects to the goal, at its own norm
            goal = goal * (affine[beyond].norm(dim=1, keepdim=True) / link.latent_norm)
        shift[beyond] = r[beyond] - (r_new[beyond] + (goal - affine[beyond]) @ pinv.T)
    beyond = realism.distance_tensor(link.to_w(clip(r - shift))) > threshold
    if beyond.any():
        shift[beyond] = _shorten(link, clip, realism, r[beyond], shift[beyond], halvings=halvings)
    return shift


def _shorten(link: LinearLink, clip, realism: LatentRealism, r: Tensor, shift: Tensor, *, halvings: int) -> Tensor:
    """``t * shift`` with the largest ``t`` in [0, 1] found by bisection whose latent is inside the threshold."""
    low = torch.zeros(len(r), 1, dtype=r.dtype, device=r.device)
    high = torch.ones_like(low)
    for _ in range(halvings):
        middle = (low + high) / 2
        inside = realism.distance_tensor(link.to_w(clip(r - middle * shift))) <= realism.threshold
        low = torch.where(inside[:, None], middle, low)
        high = torch.where(inside[:, None], high, middle)
    return low * shift
