"""Rendered training and test sets of the toy world, cached on disk."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from linkviz.atomic_files import write_atomically
from linkviz.hashing import hash_arguments

from .factors import CLASS_NAMES, SHORTCUT_PROBABILITY, FactorTable, sample_factors
from .render import RenderBatch, render_parallel

#: Part of every render cache key; bump it whenever the renderer or the factor prior changes.
RENDERER_VERSION = 3


def balanced_labels(samples_per_class: int, n_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """Class indices ``[0]*n + [1]*n + ...``, shape (n_classes * samples_per_class,)."""
    return np.repeat(np.arange(n_classes, dtype=np.int64), samples_per_class)


def render_set(samples_per_class: int, *, seed: int, resolution: int = 64,
               shortcut_probability: float = SHORTCUT_PROBABILITY, uniform_background_hue: bool = False,
               n_jobs: int = 2, cache_dir: str | Path | None = None) -> RenderBatch:
    """Render a class-balanced set of toy-world images, optionally cached.

    Parameters
    ----------
    samples_per_class : int
        Images per class.
    seed : int
        Seed of the factor prior.
    resolution : int
        Image side length.
    shortcut_probability : float
        Probability of the planted shortcut (see :mod:`~linkviz.worlds.toy.factors`).
    uniform_background_hue : bool
        Redraw every background hue uniformly over the whole circle, for every class (see
        :func:`decorrelate_background`): the sky band then says nothing about the class.
    n_jobs : int
        Rendering processes.
    cache_dir : path, optional
        Folder for an ``.npz`` cache keyed by every argument; a corrupt cache
        file is reported, deleted and rendered again.

    Returns
    -------
    RenderBatch
        ``len(CLASS_NAMES) * samples_per_class`` images, class-major order.
    """
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be positive, got {samples_per_class}")
    variant = {"uniform_background_hue": True} if uniform_background_hue else {}
    key = hash_arguments(samples_per_class=samples_per_class, seed=seed, resolution=resolution,
                         shortcut_probability=shortcut_probability, version=RENDERER_VERSION, **variant)
    path = Path(cache_dir) / f"renders_{key}.npz" if cache_dir is not None else None
    table = sample_factors(balanced_labels(samples_per_class), seed=seed,
                           shortcut_probability=shortcut_probability)
    if uniform_background_hue:
        table = decorrelate_background(table, seed=seed)
    if path is not None and path.exists():
        try:
            with np.load(path) as data:
                return RenderBatch(images=data["images"], part_masks=data["part_masks"],
                                   colour_masks=data["colour_masks"], texture_masks=data["texture_masks"],
                                   factors=table)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
            warnings.warn(f"corrupt render cache {path} ({error}); rendering again", stacklevel=2)
            path.unlink()
    batch = render_parallel(table, resolution=resolution, n_jobs=n_jobs)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"images": batch.images, "part_masks": batch.part_masks.astype(np.uint8),
                  "colour_masks": batch.colour_masks.astype(np.uint8),
                  "texture_masks": batch.texture_masks.astype(np.uint8)}
        write_atomically(path, lambda handle: np.savez(handle, **arrays))  # one temp file per writer
    return batch


def decorrelate_background(table: FactorTable, *, seed: int) -> FactorTable:
    """The same records with every background hue redrawn uniformly in [0, 360), whatever the class."""
    hue = np.random.default_rng([seed, 360]).uniform(0.0, 360.0, len(table)).astype(np.float32)
    background = table.background_hsv.copy()
    background[:, 0] = hue
    return table.with_values(background_hsv=background)


def flip_shortcut(table: FactorTable, *, seed: int) -> FactorTable:
    """The same records with every background hue redrawn outside the shortcut's sky-blue band."""
    from .factors import N_UNIFORMS, factors_from_uniform

    rng = np.random.default_rng(seed)
    redrawn = factors_from_uniform(table.label, rng.random((len(table), N_UNIFORMS)), shortcut_probability=0.0)
    background = table.background_hsv.copy()
    background[:, 0] = redrawn.background_hsv[:, 0]
    return table.with_values(background_hsv=background)
