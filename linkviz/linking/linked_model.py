"""A classifier and a generator joined by a fitted link, with the base pairs and unit statistics widgets need."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from linkviz.devices import run_device
from linkviz.images import to_uint8
from linkviz.linking.cycle import fit_cycle_link
from linkviz.linking.fit import fit_linear_link
from linkviz.linking.link import LinearLink
from linkviz.linking.refine import RefinedLink
from linkviz.linking.unit_stats import UnitStats
from linkviz.models import Classifier, Generator
from linkviz.pairs import PairSet, sample_pairs
from linkviz.world import World

__all__ = ["DEFAULT_EXAMPLES", "LATENT_PRIORS", "LINK_METHODS", "LinkedModel", "balanced_seeds", "build_linked_model",
           "typical_latent_norm"]

_MIN_FIT_PAIRS = 5  # fit_linear_link's default 5-fold cross-validation needs at least this many
DEFAULT_EXAMPLES = 4
"""Base examples the views show when no seeds are named."""
LATENT_PRIORS = (None, "gaussian")
"""What a world may declare as its ``latent_prior``: None (a W space, e.g. StyleGAN's; the default when a world
declares nothing) or "gaussian" (z fed straight to synthesis, e.g. a DCGAN: linked latents go to its typical norm)."""
LINK_METHODS = ("ridge", "cycle")
"""How :func:`build_linked_model` fits the link: "ridge" (the reference's regression on the latents; the default
for worlds that declare nothing) or "cycle" (the ridge link refitted through the generator and the classifier so
that linked images keep their class, :func:`linkviz.linking.cycle.fit_cycle_link`; a world may declare it as its
``link_method``). On the faces world it lifts class agreement but collapses faces toward one per class, so the faces
world keeps "ridge"; :class:`linkviz.linking.RefinedLink` (feature inversion from the linear link) is the link that
holds there."""


def typical_latent_norm(latent_prior: str | None, w: np.ndarray) -> float | None:
    """The norm linked latents are projected to, for a world's declared ``latent_prior``.

    Parameters
    ----------
    latent_prior : {None, "gaussian"}
        None for W-space generators (no projection); "gaussian" for z-only generators with a Gaussian prior.
    w : ndarray, shape (N, w_dim)
        The latents the link is fitted on (sampled with the pairs' truncation).

    Returns
    -------
    float or None
        The mean Euclidean norm of ``w`` for "gaussian" (``sqrt(w_dim)`` scaled by the truncation the pairs were
        drawn with); None for None.

    Raises
    ------
    ValueError
        For a prior not in :data:`LATENT_PRIORS`, or "gaussian" with latents of mean norm 0.
    """
    if latent_prior not in LATENT_PRIORS:
        raise ValueError(f"latent_prior must be one of {LATENT_PRIORS}; the world declares {latent_prior!r}")
    if latent_prior is None:
        return None
    norm = float(np.linalg.norm(np.asarray(w, dtype=np.float64), axis=1).mean())
    if not norm > 0:
        raise ValueError(f"the pairs' latents have mean norm {norm}; a Gaussian prior's latents cannot; check the "
                         "pairs (truncation_psi=0 collapses z to 0)")
    return norm


def balanced_seeds(labels: np.ndarray | Sequence[int], n: int, classes: Sequence[int] | None = None) -> tuple[int, ...]:
    """``n`` example indices taken round-robin over classes: the first of each class, then the second, ...

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Class of each example (e.g. the classifier's prediction of each base pair).
    n : int
        Examples wanted (>= 1); fewer come back when the classes hold fewer.
    classes : sequence of int, optional
        Classes to draw from, in this order; default every class present, ascending.

    Returns
    -------
    tuple of int
        Indices into ``labels``, in draw order: with ``K`` classes, example ``k`` comes from class ``k mod K``
        (classes that ran out are skipped); within a class, in index order. Deterministic.

    Raises
    ------
    ValueError
        If ``n < 1``, ``classes`` is empty or repeats a class, or none of the classes has an example.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,); got {labels.shape}")
    if int(n) < 1:
        raise ValueError(f"n must be at least 1; got {n}")
    if classes is None:
        classes = np.unique(labels).tolist()
    else:
        classes = [int(c) for c in classes]
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be non-empty and distinct; got {classes}")
    members = [np.flatnonzero(labels == c) for c in classes]
    if not any(len(m) for m in members):
        raise ValueError(f"no example belongs to classes {classes}")
    chosen: list[int] = []
    for depth in range(max(len(m) for m in members)):
        chosen.extend(int(m[depth]) for m in members if depth < len(m))
        if len(chosen) >= n:
            break
    return tuple(chosen[:int(n)])


def _class_indices(classes: Sequence[int | str], class_names: tuple[str, ...], c_dim: int) -> list[int]:
    """Conditioning class indices of ``classes`` (names or indices), checked against the generator."""
    if not c_dim:
        raise ValueError("classes= picks conditioning classes, but this generator is unconditional (c_dim=0); "
                         "sample all and keep the examples of a class with LinkedModel.examples_of_class")
    indices = []
    for choice in ([classes] if isinstance(classes, (str, int)) else classes):
        if isinstance(choice, str):
            if choice not in class_names:
                raise ValueError(f"unknown class {choice!r}; classes: {list(class_names)[:20]}"
                                 f"{' ...' if len(class_names) > 20 else ''}")
            indices.append(class_names.index(choice))
        elif isinstance(choice, (int, np.integer)) and not isinstance(choice, bool) and 0 <= choice < c_dim:
            indices.append(int(choice))
        else:
            raise ValueError(f"a class is a name or an integer index in [0, {c_dim}); got {choice!r}")
    if not indices or len(set(indices)) != len(indices):
        raise ValueError(f"classes must be non-empty and distinct; got {list(classes)}")
    return indices


@dataclass(frozen=True, eq=False)
class LinkedModel:
    """Everything the Linking-in-Style views share: the two models, the link between them and its base set.

    Attributes
    ----------
    classifier : Classifier
        ``forward_generated(images) -> (logits [N, K], r [N, D])``.
    generator : Generator
        ``synthesis(ws [N, num_ws, w_dim]) -> images [N, 3, R, R]`` in ``[-1, 1]``; on ``device``.
    link : LinearLink
        ``w = A r + b`` with ``A`` of shape ``(w_dim, D)``.
    stats : UnitStats
        Statistics of the units over ``pairs.r`` (ranges of the tuning sliders).
    pairs : PairSet
        The base pairs the link was fitted on; row ``i`` is "seed" or example ``i`` of the views.
    class_names : tuple of str
        The classifier's class names, in logit order.
    device : str or torch.device
        Where latents are built before synthesis.
    """

    classifier: Classifier
    generator: Generator
    link: LinearLink
    stats: UnitStats
    pairs: PairSet
    class_names: tuple[str, ...]
    device: str | torch.device = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(name) for name in self.class_names))
        if len(self.pairs) == 0:
            raise ValueError("pairs is empty; the views need at least one base example")
        if not self.link.r_dim == self.stats.n_units == self.pairs.r.shape[1]:
            raise ValueError(f"the link expects D={self.link.r_dim} units, stats describe {self.stats.n_units} "
                             f"and pairs.r has {self.pairs.r.shape[1]}")
        if self.link.w_dim != self.generator.w_dim:
            raise ValueError(f"the link predicts w of {self.link.w_dim} dims but the generator's w_dim is "
                             f"{self.generator.w_dim}")

    def check_example(self, index: int) -> int:
        """Return ``index`` as int, or raise IndexError if it is not a row of :attr:`pairs`."""
        index = int(index)
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"example {index} out of range for {len(self.pairs)} base pairs "
                             f"(valid: 0..{len(self.pairs) - 1})")
        return index

    def examples_of_class(self, label: int) -> np.ndarray:
        """Rows of :attr:`pairs` that the classifier assigns to class ``label``, int64 of shape (M,)."""
        return np.flatnonzero(self.pairs.predicted == int(label))

    def class_index(self, choice: int | str) -> int:
        """A class given by name or index as its index; ValueError for an unknown name, IndexError out of range."""
        if isinstance(choice, str):
            if choice not in self.class_names:
                raise ValueError(f"unknown class {choice!r}; classes: {list(self.class_names)}")
            return self.class_names.index(choice)
        index = int(choice)
        if index != choice:
            raise ValueError(f"a class is an integer index or a name; got {choice!r}")
        if not 0 <= index < len(self.class_names):
            raise IndexError(f"class {choice} out of range for {len(self.class_names)} classes")
        return index

    def example_seeds(self, n: int = DEFAULT_EXAMPLES, classes: Sequence[int | str] | None = None) -> tuple[int, ...]:
        """Base examples spread over the classes the classifier assigns them to, for views that show a few.

        :attr:`pairs` is ordered by class, so its first rows are all of one class; this takes them round-robin
        instead (:func:`balanced_seeds` of ``pairs.predicted``): the first example of each class, then the
        second, ...

        Parameters
        ----------
        n : int
            Examples wanted; fewer come back when the classes hold fewer.
        classes : sequence of int or str, optional
            Classes (indices or names) to take examples of, in this order; default every class with examples.

        Returns
        -------
        tuple of int
            Rows of :attr:`pairs`.

        Raises
        ------
        ValueError
            If a class name is unknown, ``n < 1``, or the classes have no examples.
        IndexError
            If a class index is out of range.
        """
        if classes is not None:
            classes = [self.class_index(c) for c in classes]
        return balanced_seeds(self.pairs.predicted, n, classes)

    def refined_link(self, *, steps: int = 40, step_size: float = 0.1, batch_size: int = 64) -> RefinedLink:
        """The :attr:`link` followed by ``steps`` steps of feature inversion (:class:`RefinedLink`).

        Where the linear link is only a first guess (the faces world: its class agreement is at the majority
        level), this is the link that holds; its feature error is scaled by the units' spread over :attr:`pairs`.
        It is not differentiable in r and costs ``steps`` generator and classifier passes per latent.
        """
        return RefinedLink.from_pairs(self.link, self.generator, self.classifier, self.pairs.r, steps=steps,
                                      step_size=step_size, batch_size=batch_size)

    def render(self, w: np.ndarray | Tensor) -> np.ndarray:
        """Synthesise latents ``w [N, w_dim]`` (tiled to all ``num_ws``) in one generator pass.

        Returns
        -------
        ndarray of uint8, shape (N, H, W, 3)
        """
        w = torch.as_tensor(w, dtype=torch.float32).to(self.device)
        if w.ndim != 2 or w.shape[1] != self.generator.w_dim:
            raise ValueError(f"w must have shape (N, {self.generator.w_dim}), got {tuple(w.shape)}")
        with torch.no_grad():
            images = self.generator.synthesis(w[:, None, :].expand(-1, self.generator.num_ws, -1))
        return to_uint8(images.float().cpu().numpy())


def build_linked_model(
    world: World,
    *,
    samples_per_class: int = 200,
    truncation_psi: float = 0.7,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    accepted_only: bool = True,
    classes: Sequence[int | str] | None = None,
    link_method: str | None = None,
    cycle_steps: int = 300,
) -> LinkedModel:
    """Sample (w, r) pairs from a world, fit the ridge link on them and collect the units' statistics.

    Parameters
    ----------
    world : World
        Has ``.classifier``, ``.generator`` (on ``device``, eval mode) and ``.class_names``, e.g.
        :func:`linkviz.load_toy_world` or :func:`linkviz.worlds.faces.load_faces_world`.
    samples_per_class : int
        Pairs drawn per class of a conditional generator. An unconditional generator (``c_dim == 0``) gets
        ``samples_per_class * len(class_names)`` draws.
    truncation_psi : float
        Truncation of the mapping network.
    seed : int
        Seed of the pairs and of the cross-validation folds.
    cache_dir : str or path-like, optional
        Cache root for the pairs (see :func:`linkviz.sample_pairs`).
    device : str or torch.device, optional
        Where latents are created and the linked model computes; default the generator's device (another one
        raises, naming both).
    progress : bool
        Show a progress bar while sampling.
    accepted_only : bool
        For a conditional generator, fit on the pairs classified as their conditioning class only, as the
        reference did. Unconditional generators have no conditioning class, so all pairs are used.
    classes : sequence of int or str, optional
        Conditioning classes to sample (indices or names of ``world.class_names``), e.g. the few classes of a
        paper figure out of a 1000-class generator; default every class. Needs a class-conditional generator.
    link_method : {"ridge", "cycle"}, optional
        How the link is fitted (see :data:`LINK_METHODS`); default the world's ``link_method`` if it declares
        one, else "ridge". "cycle" renders and classifies ``cycle_steps`` batches of 32 images with gradients.
    cycle_steps : int
        Adam steps of the "cycle" refit.

    Returns
    -------
    LinkedModel
        ``pairs`` are the pairs the link was fitted on; ``stats`` come from their ``r``. A world that declares
        ``latent_prior = "gaussian"`` (a z-only generator such as the faces DCGAN) gets a link whose latents are
        projected to the mean norm of the pairs' z (:attr:`LinearLink.latent_norm`), so every linked latent
        rendered by the views (tuning, counterfactuals, evaluation) lies on the prior's typical set instead of
        shrinking toward ``z = 0``; worlds that declare nothing (W-space generators) keep the affine link.

    Raises
    ------
    ValueError
        If fewer than 5 pairs remain to fit on (the message gives the acceptance rate), or for an unknown
        ``link_method``.
    """
    link_method = getattr(world, "link_method", "ridge") if link_method is None else link_method
    if link_method not in LINK_METHODS:
        raise ValueError(f"link_method must be one of {LINK_METHODS}; got {link_method!r}")

    generator = world.generator
    device = run_device(device, generator)
    class_names = tuple(world.class_names)
    if classes is not None:
        classes = _class_indices(classes, class_names, generator.c_dim)
        per_class = samples_per_class
    elif generator.c_dim:
        classes, per_class = list(range(generator.c_dim)), samples_per_class
    else:
        classes, per_class = [0], samples_per_class * len(class_names)
    pairs = sample_pairs(generator, world.classifier, classes=classes, samples_per_class=per_class,
                         truncation_psi=truncation_psi, seed=seed, device=device, cache_dir=cache_dir,
                         progress=progress)
    fit_pairs = pairs.accepted_only() if generator.c_dim and accepted_only else pairs
    if len(fit_pairs) < _MIN_FIT_PAIRS:
        raise ValueError(f"only {len(fit_pairs)} of {len(pairs)} pairs to fit the link on (acceptance rate "
                         f"{pairs.acceptance_rate:.1%}); need at least {_MIN_FIT_PAIRS}: raise samples_per_class "
                         "or pass accepted_only=False")
    fit = fit_linear_link(fit_pairs.r, fit_pairs.w, method="ridge", seed=seed)
    latent_norm = typical_latent_norm(getattr(world, "latent_prior", None), fit_pairs.w)
    link = dataclasses.replace(fit.link, latent_norm=latent_norm)
    if link_method == "cycle":
        link = fit_cycle_link(link, generator, world.classifier, fit_pairs.r, fit_pairs.w, steps=cycle_steps,
                              seed=seed, device=device, cache_dir=cache_dir, progress=progress)
    return LinkedModel(classifier=world.classifier, generator=generator, link=link,
                       stats=UnitStats.from_activations(fit_pairs.r), pairs=fit_pairs, class_names=class_names,
                       device=device)
