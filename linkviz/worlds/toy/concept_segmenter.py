"""The toy probe's concepts found in generated images: a :class:`~linkviz.labels.ConceptSegmenter` of the toy world.

The toy probe (:func:`~linkviz.worlds.toy.build_toy_probe`) labels renders from their factor records; generated
images have none, so each category is found the way it can be on any generated image:

- ``part`` (roof, cap, ...): the few-shot part segmenter of generator features (:func:`toy_part_segmenter`);
- ``object`` (house, tree, ...): the foreground of the part masks, when the latent class probe of the part
  segmenter names that class;
- ``color`` (``red-c``, ...): the colour name of every pixel (:func:`~linkviz.worlds.toy.colour_name_mask`, the
  rule that labels the probe);
- ``scene`` (``blue-s``, ...): the whole image, when the most common colour of its background pixels has that name.

Textures are not segmented (no texture segmenter of generated images exists), so texture labels score NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from linkviz.hashing import hash_arguments, hash_state

from .concepts import COLOUR_NAMES, colour_name_mask
from .factors import CLASS_NAMES, PART_NAMES
from .part_segmenter import ToyPartSegment

__all__ = ["ToyConceptSegmenter", "toy_concept_labels"]

_VERSION = 1


def toy_concept_labels() -> tuple[str, ...]:
    """The concepts :class:`ToyConceptSegmenter` finds, in the toy probe's spelling: classes, parts, ``-c``
    colours, ``-s`` scenes."""
    return (CLASS_NAMES + PART_NAMES[1:] + tuple(f"{c}-c" for c in COLOUR_NAMES)
            + tuple(f"{c}-s" for c in COLOUR_NAMES))


@dataclass(frozen=True, eq=False)
class ToyConceptSegmenter:
    """Masks of the toy probe's object, part, colour and scene concepts in generated images.

    Parameters
    ----------
    parts : ToyPartSegment
        The toy world's part segmenter (``world.part_segmenter(...)``), with its latent class probe.
    """

    parts: ToyPartSegment

    @property
    def labels(self) -> tuple[str, ...]:
        return toy_concept_labels()

    @cached_property
    def identity(self) -> str:
        """Hash of the part segmenter's head, class probe, generator and layers, and of this module's version."""
        probe = {name: value.cpu().numpy() for name, value in self.parts.probe.state().items()}
        return hash_arguments(version=_VERSION, head=hash_state(self.parts.segmenter), probe=probe,
                              generator=hash_state(self.parts.generator), layers=list(self.parts.layers))

    @torch.no_grad()
    def __call__(self, images: np.ndarray, w: Tensor) -> np.ndarray:
        """Masks bool (N, L, H, W) of :attr:`labels` in ``images`` uint8 (N, H, W, 3) generated from ``w`` [N, w_dim]."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(w):
            raise ValueError(f"images must be uint8 (N, H, W, 3) with one latent each; got {images.shape} images and "
                             f"{len(w)} latents")
        classes = self.parts.classes_of(w).numpy()
        part_map = self.parts(w, classes)  # [N, H, W] index into PART_NAMES
        colours = colour_name_mask(images)  # [N, H, W] index into COLOUR_NAMES
        foreground = part_map > 0
        objects = [foreground & (classes == k)[:, None, None] for k in range(len(CLASS_NAMES))]
        parts = [part_map == k for k in range(1, len(PART_NAMES))]
        colour_masks = [colours == k for k in range(len(COLOUR_NAMES))]
        background = np.stack([np.bincount(c[~f], minlength=len(COLOUR_NAMES)) for c, f in zip(colours, foreground)])
        scene = background.argmax(axis=1)
        scenes = [np.broadcast_to((scene == k)[:, None, None], foreground.shape) for k in range(len(COLOUR_NAMES))]
        return np.stack(objects + parts + colour_masks + scenes, axis=1)
