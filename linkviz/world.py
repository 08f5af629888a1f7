"""The ``World`` protocol: what the library, the controllers and the widgets need from a world.

A world pairs a classifier with a generator whose images it reads. linkviz ships two (the procedural toy world
in :mod:`linkviz.worlds.toy` and the pretrained faces world in :mod:`linkviz.worlds.faces`); a researcher's own
torchvision classifier and StyleGAN pickle make a third with a two-field dataclass. Worlds are users of the core:
nothing in the core imports one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from linkviz.models.classifier import Classifier
from linkviz.models.generator import Generator

__all__ = ["GroundTruthWorld", "PartSegmentingWorld", "World"]


@runtime_checkable
class World(Protocol):
    """A classifier and a generator that share a set of classes.

    Attributes
    ----------
    classifier : Classifier
        The model being explained, with its :class:`~linkviz.models.ClassifierSpec`.
    generator : Generator
        A generator in the StyleGAN calling convention whose images the classifier reads.
    class_names : tuple of str
        The classifier's class names, in logit order.
    """

    @property
    def classifier(self) -> Classifier: ...

    @property
    def generator(self) -> Generator: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...


@runtime_checkable
class GroundTruthWorld(World, Protocol):
    """A world that knows the true parts of every generated sample (the toy world does; real worlds do not).

    Attributes
    ----------
    part_names : tuple of str
        Part label names; index 0 is the background.

    Its :meth:`true_parts` and :meth:`true_images` say what each generated sample should show, so views can put
    the ground truth beside the generator's attempt.
    """

    @property
    def part_names(self) -> tuple[str, ...]: ...

    def true_parts(self, z: Tensor, c: Tensor) -> np.ndarray:
        """Ground-truth part masks of the samples ``G(z, c)``.

        Parameters
        ----------
        z : Tensor, shape [N, z_dim]
        c : Tensor, shape [N, c_dim]
            One-hot classes.

        Returns
        -------
        ndarray of int64, shape (N, R, R)
            Indices into :attr:`part_names`.
        """
        ...

    def true_images(self, z: Tensor, c: Tensor) -> np.ndarray:
        """What the samples ``G(z, c)`` should look like: the world's own drawing of their ground truth.

        Parameters
        ----------
        z : Tensor, shape [N, z_dim]
        c : Tensor, shape [N, c_dim]
            One-hot classes.

        Returns
        -------
        ndarray of uint8, shape (N, R, R, 3)
        """
        ...


@runtime_checkable
class PartSegmentingWorld(World, Protocol):
    """A world that can make a part segmenter for its generated images (a capability, not a requirement)."""

    @property
    def part_names(self) -> tuple[str, ...]: ...

    def part_segmenter(self, *, per_class: int, seed: int, cache_dir: str | Path | None,
                       device: str | torch.device) -> Callable[[Tensor], np.ndarray]:
        """A function from latents ``ws [N, num_ws, w_dim]`` to int64 part masks ``(N, R, R)``, indices into
        :attr:`part_names`, trained on ``per_class`` labelled generated images per class (cached on disk).

        The function may carry a ``part_iou`` attribute, a mapping of part name to the segmenter's IoU on held-out
        generated images; views show it in their part legends."""
        ...

