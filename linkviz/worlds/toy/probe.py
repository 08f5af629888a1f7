"""A Network Dissection probe set rendered from the toy world, with exact per-pixel concepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linkviz.dissection import broden
from linkviz.dissection.probe_dataset import ProbeDataset

from . import CLASS_NAMES, COLOUR_NAMES, PART_NAMES, TEXTURE_NAMES, colour_name_mask, render_set
from .factors import hsv_to_rgb

__all__ = ["TOY_CATEGORIES", "build_toy_probe", "toy_label_names"]

#: Categories of the toy probe, with Broden's spelling so that probes are interchangeable.
TOY_CATEGORIES: tuple[str, ...] = ("object", "part", "color", "texture", "scene")


def toy_label_names() -> tuple[str, ...]:
    """Label names of the toy probe, index = label number.

    0 is ``"-"`` (unlabelled); then the classes (object), the parts except background, the colours with Broden's
    ``-c`` suffix, the textures, and the background colours as scenes with the ``-s`` suffix.
    """
    return (("-",) + CLASS_NAMES + PART_NAMES[1:] + tuple(f"{c}-c" for c in COLOUR_NAMES) + TEXTURE_NAMES
            + tuple(f"{c}-s" for c in COLOUR_NAMES))


def build_toy_probe(samples_per_class: int, *, seed: int, out_dir: str | Path | None = None, n_jobs: int = 1,
                    cache_dir: str | Path | None = None) -> ProbeDataset:
    """Render a toy-world probe set with concepts in five categories.

    Categories (Broden spelling):

    - ``object``: per pixel, the class of the object on its foreground pixels;
    - ``part``: per pixel, the object part (background unlabelled);
    - ``color``: per pixel, the colour name of every pixel (background included);
    - ``texture``: per pixel, the texture of the part (plain, striped, dotted; background unlabelled);
    - ``scene``: a whole-image label, the colour name of the background.

    Labels are at image resolution (64 x 64).

    Parameters
    ----------
    samples_per_class : int
        Images per class; the set holds ``len(CLASS_NAMES) * samples_per_class`` images, class-major.
    seed : int
        Seed of the toy world's factor prior.
    out_dir : path, optional
        If given, the probe is also written there in the Broden format (see :func:`broden.write`).
    n_jobs : int
        Rendering processes.
    cache_dir : path, optional
        Render cache folder (see :func:`linkviz.worlds.toy.render_set`).

    Returns
    -------
    ProbeDataset
    """
    batch = render_set(samples_per_class, seed=seed, n_jobs=n_jobs, cache_dir=cache_dir)
    names = toy_label_names()
    number = {name: i for i, name in enumerate(names)}
    object_ids = np.array([number[c] for c in CLASS_NAMES])
    part_ids = np.array([0] + [number[p] for p in PART_NAMES[1:]])
    colour_ids = np.array([number[f"{c}-c"] for c in COLOUR_NAMES])
    texture_ids = np.array([0] + [number[t] for t in TEXTURE_NAMES])
    scene_ids = np.array([number[f"{c}-s"] for c in COLOUR_NAMES])

    foreground = batch.part_masks > 0
    classes = np.asarray(batch.factors.label, dtype=np.int64)
    objects = np.where(foreground, object_ids[classes][:, None, None], 0)
    background_rgb = np.round(hsv_to_rgb(batch.factors.background_hsv) * 255).clip(0, 255).astype(np.uint8)
    scenes = scene_ids[colour_name_mask(background_rgb)]
    probe = ProbeDataset(
        images=batch.images, label_names=names, categories=TOY_CATEGORIES,
        pixel_labels={"object": objects[:, None], "part": part_ids[batch.part_masks][:, None],
                      "color": colour_ids[batch.colour_masks][:, None],
                      "texture": texture_ids[batch.texture_masks][:, None]},
        image_labels={"scene": scenes[:, None]},
        image_names=tuple(f"toy/{i:06d}_{CLASS_NAMES[c]}.png" for i, c in enumerate(classes)),
    )
    if out_dir is not None:
        broden.write(probe, out_dir, overwrite=True)
    return probe
