"""A fake unit sweep of known content, written in the on-disk format of :func:`linkviz.tuning.run_sweep`.

Every image shows one disk on a black background, centred with a small offset per seed; each unit changes the
disk's radius by a known amount per step (``growth``) around the unperturbed step, and may paint it in its own
colour. :func:`threshold_segmenter` labels the disk (any channel above 127) as label 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from linkviz.cache import ChunkedStore
from linkviz.tuning import SweepResult

LABELS = ("background", "disk")
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def disk_image(radius: float, *, size: int, centre: tuple[float, float], colour: tuple[int, int, int] = WHITE,
               background: tuple[int, int, int] = BLACK) -> np.ndarray:
    """uint8 image [size, size, 3]: a disk of ``radius`` pixels at ``centre`` (row, col) on ``background``."""
    rows, cols = np.mgrid[:size, :size] + 0.5
    inside = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    image = np.empty((size, size, 3), np.uint8)
    image[:] = background
    image[inside] = colour
    return image


def write_disk_sweep(directory: str | Path, growth: Mapping[int, float], *, n_seeds: int = 3, n_steps: int = 5,
                     size: int = 32, base_radius: float = 7.0, baseline_step: int = 2, units_per_chunk: int = 2,
                     colours: Mapping[int, tuple[int, int, int]] | None = None, mode: str = "range",
                     background: tuple[int, int, int] = BLACK) -> SweepResult:
    """Write a finished sweep of the units in ``growth`` (radius change in pixels per step) and open it.

    ``baseline_step=-1`` writes a sweep with no unperturbed step (as mode "reference" does).
    """
    units = list(growth)
    colours = dict(colours or {})
    meta = {"format": 1, "fake": "disk sweep", "units": units, "n_seeds": n_seeds, "n_steps": n_steps,
            "mode": mode, "units_per_chunk": units_per_chunk, "store_w": False,
            "growth": {str(unit): repr(float(value)) for unit, value in growth.items()},
            "colours": {str(unit): list(colour) for unit, colour in colours.items()}, "background": list(background)}
    store = ChunkedStore(directory, meta=meta, keys=["units", "values", "baseline_step", "images"])
    for index, start in enumerate(range(0, len(units), units_per_chunk)):
        group = units[start:start + units_per_chunk]
        offset = max(baseline_step, 0)
        images = np.stack([
            np.stack([np.stack([
                disk_image(base_radius + 0.5 * seed + growth[unit] * (step - offset), size=size,
                           centre=(size / 2 + seed, size / 2 - seed), colour=colours.get(unit, WHITE),
                           background=background)
                for step in range(n_steps)]) for seed in range(n_seeds)])
            for unit in group])
        values = np.broadcast_to(np.arange(n_steps, dtype=np.float32), (len(group), n_seeds, n_steps))
        store.save(index, units=np.asarray(group, np.int64), values=np.ascontiguousarray(values),
                   baseline_step=np.full((len(group), n_seeds), baseline_step, np.int64), images=images)
    store.mark_complete()
    return SweepResult(directory)


def threshold_segmenter(images: np.ndarray) -> np.ndarray:
    """Label 1 where any channel exceeds 127, else 0: int64 masks [M, H, W] of uint8 images [M, H, W, 3]."""
    return (np.asarray(images).max(axis=-1) > 127).astype(np.int64)
