"""WorldBrowsing: a world's generated samples of one class, classified, above the ground truth they should show."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from linkviz.controllers.view import GridView, choice_index
from linkviz.images import tile_images, to_uint8
from linkviz.models.generator import one_hot
from linkviz.models.modules import module_device
from linkviz.world import GroundTruthWorld, World

__all__ = ["WorldBrowsing", "WorldSamplesView"]

ZOOM = 2
GAP = 2
#: Draws per requested sample of an unconditional generator, searched for samples the classifier gives the class.
UNCONDITIONAL_DRAWS = 16


@dataclass(frozen=True, eq=False, kw_only=True)
class WorldSamplesView(GridView):
    """Generated samples of one class (top row) above the world's ground truth for them (bottom row, if known).

    Attributes
    ----------
    class_index : int
    class_name : str
    truncation_psi : float
    seed : int
        Seed of the latents ``z``.
    class_names : tuple of str
        The classifier's classes.
    labels : ndarray of int64, shape (N,)
        The class each sample was generated for (for an unconditional generator: searched for).
    predicted : ndarray of int64, shape (N,)
        The classifier's class of each generated image.
    draws : ndarray of int64, shape (N,)
        Index of each sample among the latents drawn from ``seed`` (``arange(N)`` for a conditional generator).
    generated : ndarray of uint8, shape (N, R, R, 3)
    rendered : ndarray of uint8, shape (N, R, R, 3), or None
        :meth:`GroundTruthWorld.true_images` of the same latents; None for a world without ground truth.
    """

    class_index: int
    class_name: str
    truncation_psi: float
    seed: int
    class_names: tuple[str, ...]
    labels: np.ndarray
    predicted: np.ndarray
    draws: np.ndarray
    generated: np.ndarray
    rendered: np.ndarray | None = None

    @property
    def agreement(self) -> int:
        """Samples the classifier assigns to the class they were generated for."""
        return int((self.predicted == self.labels).sum())

    def to_frame(self) -> pd.DataFrame:
        """One row per sample: its draw, class, the classifier's verdict and whether they agree."""
        names = np.asarray(self.class_names, dtype=object)
        return pd.DataFrame({"sample": np.arange(len(self.labels)), "draw": self.draws, "seed": self.seed,
                             "truncation_psi": self.truncation_psi, "class": names[self.labels],
                             "predicted": names[self.predicted], "agrees": self.predicted == self.labels,
                             "ground_truth": self.rendered is not None})


class WorldBrowsing:
    """The state behind :class:`linkviz.widgets.WorldBrowser`: samples of a class from any :class:`~linkviz.World`.

    A conditional generator (``c_dim > 0``) draws ``n_samples`` latents from the seed with the class as its
    one-hot condition. An unconditional one draws ``16 * n_samples`` latents and keeps the first ``n_samples``
    the classifier assigns to the class (the rest, in draw order, if fewer are found). A
    :class:`~linkviz.GroundTruthWorld` adds a row of :meth:`~linkviz.GroundTruthWorld.true_images`.

    Parameters
    ----------
    world : World
        Classifier, generator and class names.
    n_samples : int
        Samples per view.
    """

    def __init__(self, world: World, *, n_samples: int = 8) -> None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        for name in ("classifier", "generator", "class_names"):
            if not hasattr(world, name):
                raise TypeError(f"{type(world).__name__} is not a World: it has no {name!r}")
        self.world = world
        self.n_samples = int(n_samples)
        self.class_names = tuple(str(name) for name in world.class_names)
        self.has_ground_truth = isinstance(world, GroundTruthWorld)
        self.device = module_device(world.generator.synthesis_module)

    def class_index(self, name_or_index: str | int) -> int:
        """The index of a class given by name or index; ValueError / IndexError if there is no such class."""
        return choice_index(name_or_index, self.class_names, noun="class", plural="classes")

    def compute(self, class_: str | int, truncation_psi: float, seed: int) -> WorldSamplesView:
        """Samples of ``class_`` (name or index) with latents from ``seed``, classified, with their ground truth.

        Raises
        ------
        ValueError, IndexError
            For an unknown class or a negative seed.
        """
        label, seed, psi = self.class_index(class_), int(seed), float(truncation_psi)
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        generator = self.world.generator
        conditional = generator.c_dim > 0
        count = self.n_samples if conditional else self.n_samples * UNCONDITIONAL_DRAWS
        z = torch.randn(count, generator.z_dim, generator=torch.Generator().manual_seed(seed)).to(self.device)
        c = (one_hot(torch.full((count,), label, device=self.device), generator.c_dim) if conditional
             else torch.zeros(count, 0, device=self.device))
        with torch.no_grad():
            images = generator.synthesis(generator.mapping(z, c if conditional else None, truncation_psi=psi))
            logits, _ = self.world.classifier.forward_generated(images.to(self.world.classifier.device))
        predicted = logits.argmax(1).cpu().numpy().astype(np.int64)
        draws = np.arange(count) if conditional else _first_of_class(predicted, label, self.n_samples)
        index = torch.as_tensor(draws, device=self.device)
        generated = to_uint8(images[index].float().cpu().numpy())
        rendered = None
        if self.has_ground_truth:
            rendered = np.asarray(self.world.true_images(z[index], c[index]), dtype=np.uint8)
        labels = np.full(len(draws), label, dtype=np.int64)
        view_predicted = predicted[draws]
        tiles = generated if rendered is None else np.concatenate([generated, rendered])
        return WorldSamplesView(
            grid=tile_images(tiles, columns=len(draws), zoom=ZOOM, gap=GAP), rows=1 if rendered is None else 2,
            columns=len(draws), row_labels=("generated",) if rendered is None else ("generated", "ground truth"),
            column_labels=tuple(f"says {self.class_names[p]}" for p in view_predicted),
            title=f"{self.class_names[label]} samples (psi {psi:.2f}, seed {seed})",
            caption_html=self._caption(label, view_predicted, conditional=conditional, drawn=count,
                                       ground_truth=rendered is not None),
            class_index=label, class_name=self.class_names[label], truncation_psi=psi, seed=seed,
            class_names=self.class_names, labels=labels, predicted=view_predicted, draws=draws,
            generated=generated, rendered=rendered)

    def _caption(self, label: int, predicted: np.ndarray, *, conditional: bool, drawn: int,
                 ground_truth: bool) -> str:
        name = html.escape(self.class_names[label])
        verdicts = [self.class_names[p] for p in predicted]
        agree = int((predicted == label).sum())
        rows = ("top: generated, bottom: the world's ground truth of the same latents (renders of the same factors)"
                if ground_truth else "generated samples (this world has no ground truth to show below them)")
        source = ("" if conditional else
                  f" The generator is unconditional: the first samples of {drawn} draws classified as <i>{name}</i>.")
        return (f"<b>{agree}/{len(predicted)}</b> generated <i>{name}</i> samples classified as their class; "
                f"{rows}.{source} Classifier says: {html.escape(', '.join(verdicts))}")


def _first_of_class(predicted: np.ndarray, label: int, count: int) -> np.ndarray:
    """Indices of the first ``count`` draws predicted as ``label``, topped up with the others in draw order."""
    hits = np.flatnonzero(predicted == label)
    misses = np.flatnonzero(predicted != label)
    return np.sort(np.concatenate([hits[:count], misses[:max(count - len(hits), 0)]]))
