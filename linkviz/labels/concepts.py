"""What a causal check of unit labels needs from a world: concept masks of generated images.

A :class:`ConceptSegmenter` names the concepts it can find (in the spelling of the labels it checks, e.g. the
probe's ``"roof"``, ``"red-c"``) and turns generated images and the latents they came from into one mask per
concept. :func:`concept_presence` reduces the masks to the share of each image a concept covers, what
:func:`~linkviz.labels.causal_scores` compares between a unit's low and high values.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from torch import Tensor

__all__ = ["ConceptSegmenter", "concept_presence"]


@runtime_checkable
class ConceptSegmenter(Protocol):
    """Concept masks of generated images.

    Attributes
    ----------
    labels : tuple of str, length L
        The concepts it segments, in the order of its masks.
    identity : str
        A fingerprint of everything that decides its masks (weights, thresholds, version); part of the keys of
        cached causal scores, so a changed segmenter never reuses old scores.
    """

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def identity(self) -> str: ...

    def __call__(self, images: np.ndarray, w: Tensor) -> np.ndarray:
        """Masks of every concept.

        Parameters
        ----------
        images : ndarray of uint8, shape (N, H, W, 3)
            Generated images.
        w : Tensor, shape [N, w_dim]
            The latents they were generated from (every synthesis layer gets the same w).

        Returns
        -------
        ndarray of bool, shape (N, L, H, W)
            Where each concept of :attr:`labels` is; an image-level concept (a scene) is all True or all False.
        """
        ...


def concept_presence(segmenter: ConceptSegmenter, images: np.ndarray, w: Tensor) -> np.ndarray:
    """Share of each image covered by each concept of ``segmenter``.

    Parameters
    ----------
    segmenter : ConceptSegmenter
    images : ndarray of uint8, shape (N, H, W, 3)
    w : Tensor, shape [N, w_dim]

    Returns
    -------
    ndarray of float32, shape (N, L)
        In ``[0, 1]``; ``L = len(segmenter.labels)``.

    Raises
    ------
    ValueError
        If the segmenter's masks do not have shape (N, L, H, W).
    """
    masks = np.asarray(segmenter(images, w))
    expected = (len(images), len(segmenter.labels), *images.shape[1:3])
    if masks.shape != expected:
        raise ValueError(f"the concept segmenter returned masks of shape {masks.shape}; expected {expected} "
                         "(images x labels x H x W): one mask per label of segmenter.labels")
    return masks.reshape(*masks.shape[:2], -1).mean(axis=2, dtype=np.float64).astype(np.float32)
