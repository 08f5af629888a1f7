"""Perturbed copies of a probe set for detector-robustness experiments: noise, rotation, rearranged patches.

Each perturbation is a frozen dataclass called on a :class:`~linkviz.dissection.ProbeDataset`; it returns a new
probe whose per-pixel labels move with the pixels (rotation, patches) so that IoUs stay meaningful. Whole-image
labels are kept, and so is each label's coverage, hence its primary category, so that dissections of perturbed
probes are comparable with the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from .probe_dataset import ProbeDataset

__all__ = ["AddNoise", "Perturbation", "Rotate", "ShufflePatches", "slide_perturbations"]

_CHUNK = 64  # images perturbed at a time (bounds temporary float memory)


def _replace(probe: ProbeDataset, images: np.ndarray, pixel_labels: dict[str, np.ndarray] | None = None
             ) -> ProbeDataset:
    return ProbeDataset(images=images, label_names=probe.label_names, categories=probe.categories,
                        pixel_labels=probe.pixel_labels if pixel_labels is None else pixel_labels,
                        image_labels=probe.image_labels, segmentation_shape=probe.segmentation_shape,
                        image_names=probe.image_names, label_coverage=probe.coverage())


@dataclass(frozen=True)
class AddNoise:
    """Add ``strength * Unif[0, 1]`` noise to every channel of every pixel (images in [0, 1]); labels unchanged.

    Parameters
    ----------
    strength : float
        ``k`` in ``x + k * u`` (the seed slides use 1, 5, 10, 100).
    seed : int
        Seed of the noise.
    range_mode : {"rescale", "clip"}
        How the result returns to [0, 1]: ``"rescale"`` divides by ``1 + k`` (signal-to-noise ratio as in
        ``x + k * u``, the image only loses contrast); ``"clip"`` clips, which for ``k >= 1`` mostly saturates to
        white.
    """

    strength: float
    seed: int
    range_mode: Literal["rescale", "clip"] = "rescale"

    name = "noise"

    def __post_init__(self) -> None:
        if self.strength < 0:
            raise ValueError(f"noise strength must be non-negative, got {self.strength}")
        if self.range_mode not in ("rescale", "clip"):
            raise ValueError(f"range_mode must be 'rescale' or 'clip', got {self.range_mode!r}")

    def __call__(self, probe: ProbeDataset) -> ProbeDataset:
        rng = np.random.default_rng(self.seed)
        images = np.empty_like(probe.images)
        for start in range(0, len(images), _CHUNK):
            chunk = probe.images[start:start + _CHUNK].astype(np.float32) / np.float32(255)
            noisy = chunk + np.float32(self.strength) * rng.random(chunk.shape, dtype=np.float32)
            noisy = noisy / np.float32(1 + self.strength) if self.range_mode == "rescale" else np.clip(noisy, 0, 1)
            images[start:start + _CHUNK] = np.round(noisy * 255).clip(0, 255).astype(np.uint8)
        return _replace(probe, images)


def _rotation_theta(degrees: float, height: int, width: int) -> torch.Tensor:
    """``affine_grid`` matrix (output to input, normalised coordinates) of a rotation about the centre."""
    radians = math.radians(degrees)
    cos, sin = round(math.cos(radians), 12), round(math.sin(radians), 12)  # exact for multiples of 90 degrees
    return torch.tensor([[cos, -sin * height / width, 0.0], [sin * width / height, cos, 0.0]], dtype=torch.float64)


def _rotate(maps: np.ndarray, degrees: float, mode: str) -> np.ndarray:
    """Rotate ``maps [n, c, h, w]`` counter-clockwise (as displayed) about the centre; outside is 0."""
    x = torch.from_numpy(maps).double()
    theta = _rotation_theta(degrees, *maps.shape[2:]).expand(len(maps), 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False).numpy()


@dataclass(frozen=True)
class Rotate:
    """Rotate images and label maps counter-clockwise about their centre; uncovered corners become black and
    unlabelled. Images are resampled bilinearly, labels by nearest neighbour.

    Parameters
    ----------
    degrees : float
        Angle (the seed slides use 10, 45, 90).
    """

    degrees: float

    name = "rotation"

    @property
    def strength(self) -> float:
        return float(self.degrees)

    def __call__(self, probe: ProbeDataset) -> ProbeDataset:
        images = np.empty_like(probe.images)
        for start in range(0, len(images), _CHUNK):
            chunk = probe.images[start:start + _CHUNK].transpose(0, 3, 1, 2)
            rotated = _rotate(chunk, self.degrees, "bilinear").transpose(0, 2, 3, 1)
            images[start:start + _CHUNK] = np.round(rotated).clip(0, 255).astype(np.uint8)
        labels = {category: np.concatenate([_rotate(maps[s:s + _CHUNK], self.degrees, "nearest")
                                            for s in range(0, len(maps), _CHUNK)]).round().astype(maps.dtype)
                  for category, maps in probe.pixel_labels.items()}
        return _replace(probe, images, labels)


def _shuffle_patches(maps: np.ndarray, grid: int, permutations: np.ndarray) -> np.ndarray:
    """Rearrange the ``grid x grid`` patches of ``maps [n, h, w, ...]`` by ``permutations [n, grid**2]``."""
    n, height, width = maps.shape[:3]
    rest = maps.shape[3:]
    ph, pw = height // grid, width // grid
    patches = maps.reshape(n, grid, ph, grid, pw, *rest).swapaxes(2, 3).reshape(n, grid * grid, ph, pw, *rest)
    index = permutations.reshape(n, grid * grid, *(1,) * (patches.ndim - 2))
    shuffled = np.take_along_axis(patches, index, axis=1)
    return shuffled.reshape(n, grid, grid, ph, pw, *rest).swapaxes(2, 3).reshape(maps.shape)


@dataclass(frozen=True)
class ShufflePatches:
    """Cut each image into ``grid x grid`` patches and put them back in a random order (one permutation per
    image, applied to its label maps too).

    Parameters
    ----------
    grid : int
        Patches per side (the seed slides use 4 and 8); must divide the image and segmentation sizes.
    seed : int
        Seed of the permutations.
    """

    grid: int
    seed: int

    name = "patches"

    @property
    def strength(self) -> float:
        return float(self.grid)

    def __call__(self, probe: ProbeDataset) -> ProbeDataset:
        sizes = {"images": probe.images.shape[1:3], "segmentation": probe.segmentation_shape}
        for what, (height, width) in sizes.items():
            if self.grid < 1 or height % self.grid or width % self.grid:
                raise ValueError(f"a {self.grid} x {self.grid} patch grid must divide the {what} size "
                                 f"{height}x{width}")
        rng = np.random.default_rng(self.seed)
        permutations = rng.permuted(np.tile(np.arange(self.grid**2), (len(probe), 1)), axis=1)
        images = _shuffle_patches(probe.images, self.grid, permutations)
        labels = {category: _shuffle_patches(maps.transpose(0, 2, 3, 1), self.grid, permutations).transpose(0, 3, 1, 2)
                  for category, maps in probe.pixel_labels.items()}
        return _replace(probe, np.ascontiguousarray(images), {c: np.ascontiguousarray(m) for c, m in labels.items()})


Perturbation = AddNoise | Rotate | ShufflePatches


def slide_perturbations(*, seed: int) -> tuple[Perturbation, ...]:
    """The seed slides' robustness conditions: noise ``k`` in 1, 5, 10, 100; rotation by 10, 45, 90 degrees;
    4 x 4 and 8 x 8 rearranged patches."""
    return (*(AddNoise(k, seed=seed) for k in (1, 5, 10, 100)), *(Rotate(d) for d in (10, 45, 90)),
            *(ShufflePatches(g, seed=seed) for g in (4, 8)))
