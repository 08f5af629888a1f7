"""The checked inputs of a counterfactual search: activations on the search's device and one class pair per example."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from linkviz.counterfactual.realism import LatentRealism
from linkviz.linking.link import LinearLink, check_activations
from linkviz.models.classifier import Classifier

__all__ = ["check_search"]


def _class_indices(classes: int | Sequence[int] | Tensor | np.ndarray, *, n_examples: int, n_classes: int,
                   name: str) -> Tensor:
    """Class indices as a long tensor [N] (a scalar is repeated); IndexError if outside ``[0, K)``."""
    classes = torch.as_tensor(classes)
    if classes.is_floating_point() or classes.is_complex() or classes.dtype == torch.bool:
        raise TypeError(f"{name} must be integer class indices; got dtype {classes.dtype}")
    if classes.ndim == 0:
        classes = classes.expand(n_examples)
    if tuple(classes.shape) != (n_examples,):
        raise ValueError(f"{name} must be an int or have shape [N={n_examples}]; got {list(classes.shape)}")
    bad = sorted({int(c) for c in classes if not 0 <= int(c) < n_classes})
    if bad:
        raise IndexError(f"{name} classes {bad} out of range for a classifier with K={n_classes} classes "
                         f"(valid: 0..{n_classes - 1})")
    return classes.long().cpu()


def check_search(link: LinearLink, classifier: Classifier, r: Tensor | np.ndarray, *,
                 origin: int | Sequence[int] | Tensor, target: int | Sequence[int] | Tensor, objective: str,
                 realism: LatentRealism | None, device: torch.device | str) -> tuple[Tensor, Tensor, Tensor]:
    """The checked inputs of a counterfactual search: ``r [N, D]`` on ``device``, origins and targets ``[N]``.

    Raises ValueError if ``r`` is not [N, D], holds NaN/inf or lies outside the classifier's declared
    ``penultimate_range``, if a target equals its origin, for an unknown ``objective``, or if ``realism`` models
    latents of another size than the link's; IndexError for a class index out of range.
    """
    r = check_activations(r, link, device)
    classifier.spec.check_penultimate(r)
    n_examples, n_classes = r.shape[0], len(classifier.spec.class_names)
    origin = _class_indices(origin, n_examples=n_examples, n_classes=n_classes, name="origin")
    target = _class_indices(target, n_examples=n_examples, n_classes=n_classes, name="target")
    same = torch.nonzero(origin == target).flatten().tolist()
    if same:
        raise ValueError(f"target equals origin for examples {same}; a counterfactual needs another class")
    if objective not in ("activations", "image"):
        raise ValueError(f"objective must be 'activations' or 'image'; got {objective!r}")
    if realism is not None and realism.w_dim != link.w_dim:
        raise ValueError(f"realism models latents of size {realism.w_dim} but the link makes w of size "
                         f"{link.w_dim}; fit it on this generator's latents (e.g. linked.pairs.w)")
    return r, origin, target
