"""A ground-truth probe for generated images: a small CNN that predicts, per part label, the metrics of the part.

Trained on toy renders, whose part masks are known, it estimates for any image of the toy world (a generated
one included) what the quantification metrics of :mod:`linkviz.quantify.part_metrics` would give on the
*true* part masks, with no segmentation in between. Per label it regresses six targets:

============  ==============================================================================================
target        definition (on the renderer's part mask, via :func:`~linkviz.quantify.measure_parts`)
============  ==============================================================================================
area          area as a fraction of the image
luminance     mean luminance, ``[0, 255]``
entropy       mean local entropy, bits
eccentricity  area-weighted eccentricity of the part's components
angle_cos     ``eccentricity * cos(2 theta)``, theta the part's axial angle
angle_sin     ``eccentricity * sin(2 theta)`` (weighted by eccentricity: a near-disk has no angle)
============  ==============================================================================================

Area is always defined (0 for an absent part); the other targets are undefined (NaN, left out of the loss) where
the part covers less than the visibility threshold. Targets are standardised per (label, target) with the
training set's mean and standard deviation, which the model keeps as buffers.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from linkviz.atomic_files import write_atomically
from linkviz.minibatch_training import fit_minibatches
from linkviz.models.modules import eval_mode
from linkviz.quantify.part_metrics import METRICS, measure_parts, visibility_threshold

__all__ = [
    "TARGETS",
    "MetricRegressor",
    "estimate_metrics",
    "load_metric_regressor",
    "metric_targets",
    "regressor_scores",
    "save_metric_regressor",
    "train_metric_regressor",
]

TARGETS = ("area", "luminance", "entropy", "eccentricity", "angle_cos", "angle_sin")
_FLIP_SIGN = np.array([1.0, 1.0, 1.0, 1.0, 1.0, -1.0], dtype=np.float32)  # a left-right flip negates the angle


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images [N, R, R, 3]; got {images.dtype} {images.shape}")
    return images


def metric_targets(images: np.ndarray, masks: np.ndarray, labels: Sequence[str], *,
                   min_area: float | None = None, chunk_size: int = 256) -> np.ndarray:
    """The regression targets of images with known part masks.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W, 3)
    masks : ndarray of int, shape (N, H, W)
        True part masks; value ``i`` is ``labels[i]``.
    labels : sequence of str
    min_area : float, optional
        Parts smaller than this many pixels get NaN for every target but area; default the visibility threshold
        of the image size.
    chunk_size : int
        Images measured per call of :func:`~linkviz.quantify.measure_parts`.

    Returns
    -------
    ndarray of float32, shape (N, L, 6)
        Targets in the order of :data:`TARGETS`.
    """
    images, masks = _check_images(images), np.asarray(masks)
    if masks.shape != images.shape[:3]:
        raise ValueError(f"masks must have shape {images.shape[:3]}; got {masks.shape}")
    size = images.shape[1] * images.shape[2]
    min_area = visibility_threshold(images.shape[1:3]) if min_area is None else float(min_area)
    blocks = []
    for start in range(0, len(images), chunk_size):
        # measure_parts treats the images as the steps of one sequence; only its per-part table is used
        parts = measure_parts(images[start:start + chunk_size], masks[start:start + chunk_size], labels,
                              exclude=()).parts
        values = parts[list(METRICS)].to_numpy(np.float64).reshape(-1, len(labels), len(METRICS))
        blocks.append(values)
    area, luminance, entropy, eccentricity, angle = np.moveaxis(np.concatenate(blocks), -1, 0)
    doubled = np.radians(2.0 * angle)
    targets = np.stack([area / size, luminance, entropy, eccentricity, eccentricity * np.cos(doubled),
                        eccentricity * np.sin(doubled)], axis=-1)
    targets[..., 1:][area < min_area] = np.nan
    return targets.astype(np.float32)


def _down(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class MetricRegressor(nn.Module):
    """Images [N, 3, R, R] in [-1, 1] -> standardised targets [N, L, 6] (see the module).

    Parameters
    ----------
    labels : sequence of str
        The part labels predicted, in order.
    width : int
        Channels of the first convolution; doubled at the next two of the four downsamplings.
    """

    def __init__(self, labels: Sequence[str], *, width: int = 16) -> None:
        super().__init__()
        if not labels or width < 1:
            raise ValueError(f"need at least one label and width >= 1; got {list(labels)} and {width}")
        self.labels, self.width = tuple(str(name) for name in labels), int(width)
        channels = (width, width, 2 * width, 4 * width, 4 * width)
        self.features = nn.Sequential(_down(3, channels[0], 1),
                                      *[_down(a, b, 2) for a, b in itertools.pairwise(channels)],
                                      nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(16 * channels[-1], 256), nn.ReLU(),
                                  nn.Linear(256, len(self.labels) * len(TARGETS)))
        self.register_buffer("target_mean", torch.zeros(len(self.labels), len(TARGETS)))
        self.register_buffer("target_std", torch.ones(len(self.labels), len(TARGETS)))

    def forward(self, images: Tensor) -> Tensor:
        """Standardised predictions [N, L, 6] of float images [N, 3, R, R] in [-1, 1]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [N, 3, R, R]; got {list(images.shape)}")
        return self.head(self.features(images)).reshape(-1, len(self.labels), len(TARGETS))

    @torch.no_grad()
    def predict(self, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Targets in their own units (see :data:`TARGETS`) of uint8 images [N, R, R, 3]: float32 [N, L, 6]."""
        images = _check_images(images)
        device = self.target_mean.device
        with eval_mode(self):
            out = [self(_to_tensor(images[start:start + batch_size]).to(device)) * self.target_std
                   + self.target_mean for start in range(0, len(images), batch_size)]
        if not out:
            return np.zeros((0, len(self.labels), len(TARGETS)), np.float32)
        return torch.cat(out).cpu().numpy()


def _to_tensor(images: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def estimate_metrics(model: MetricRegressor, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """The regressor's estimate of every label's metrics, in the units of :data:`~linkviz.quantify.METRICS`.

    Parameters
    ----------
    model : MetricRegressor
    images : ndarray of uint8, shape (N, H, W, 3)
    batch_size : int

    Returns
    -------
    ndarray of float64, shape (N, L, 5)
        ``area`` in pixels, ``luminance`` in ``[0, 255]``, ``entropy`` in bits, ``eccentricity``, and ``angle``
        in degrees in ``(-90, 90]`` (from the doubled-angle vector).
    """
    images = _check_images(images)
    predicted = model.predict(images, batch_size=batch_size).astype(np.float64)
    area = np.clip(predicted[..., 0], 0.0, None) * images.shape[1] * images.shape[2]
    angle = np.degrees(np.arctan2(predicted[..., 5], predicted[..., 4])) / 2.0
    angle = np.where(angle <= -90.0, angle + 180.0, angle)
    return np.stack([area, predicted[..., 1], predicted[..., 2], predicted[..., 3], angle], axis=-1)


def _standardisation(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (label, target) mean and std over defined values; 0 and 1 where too few are defined."""
    defined = np.isfinite(targets)
    counts = defined.sum(axis=0)
    filled = np.where(defined, targets, 0.0).astype(np.float64)
    mean = filled.sum(axis=0) / np.maximum(counts, 1)
    var = (np.where(defined, targets - mean, 0.0) ** 2).sum(axis=0) / np.maximum(counts - 1, 1)
    std = np.sqrt(var)
    std = np.where((counts > 1) & (std > 1e-6), std, 1.0)
    return np.where(counts > 0, mean, 0.0).astype(np.float32), std.astype(np.float32)


def train_metric_regressor(
    images: np.ndarray,
    masks: np.ndarray,
    labels: Sequence[str],
    *,
    epochs: int = 15,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    width: int = 16,
    flips: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MetricRegressor:
    """Train a :class:`MetricRegressor` on rendered images and their true part masks.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, R, R, 3)
        Renders (e.g. ``RenderBatch.images``).
    masks : ndarray of int, shape (N, R, R)
        Their part masks (``RenderBatch.part_masks``); value ``i`` is ``labels[i]``.
    labels : sequence of str
        Label names (e.g. :data:`~linkviz.worlds.toy.PART_NAMES`).
    epochs, batch_size : int
    learning_rate : float
        Adam learning rate, cosine-annealed to 0 over the run.
    width : int
        See :class:`MetricRegressor`.
    flips : bool
        Augment with left-right flips (which negate the angle's sine target).
    seed : int
        Seeds initialisation, shuffling and flips (the global RNG state is restored afterwards).
    device : str or torch.device
        Where to train; the returned module stays there.
    progress : bool
        Show a tqdm bar over epochs with the last epoch's loss.

    Returns
    -------
    MetricRegressor
        In eval mode, with the training set's target statistics.
    """
    images = _check_images(images)
    targets = metric_targets(images, masks, labels)
    mean, std = _standardisation(targets)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MetricRegressor(labels, width=width)
    model.target_mean.copy_(torch.from_numpy(mean))
    model.target_std.copy_(torch.from_numpy(std))
    model.to(device).train()
    inputs = _to_tensor(images).to(device)
    scaled = torch.from_numpy((targets - mean) / std).to(device)
    defined = torch.isfinite(scaled)
    scaled = torch.nan_to_num(scaled)
    flip_sign = torch.from_numpy(_FLIP_SIGN).to(device)

    def batch_loss(rows: Tensor, flipped: Tensor) -> Tensor:
        x = torch.where(flipped[:, None, None, None], inputs[rows].flip(-1), inputs[rows])
        # standardised angle_sin is (s - mean) / std; its flip is (-s - mean) / std = -t - 2 mean / std
        y = scaled[rows]
        y_flipped = y * flip_sign - (1 - flip_sign) * model.target_mean / model.target_std
        y = torch.where(flipped[:, None, None], y_flipped, y)
        mask = defined[rows].float()
        return (((model(x) - y) ** 2) * mask).sum() / mask.sum().clamp(min=1.0)

    return fit_minibatches(model, len(inputs), batch_loss, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, flips=flips, seed=seed, device=device,
                           description="metric regressor", progress=progress)


def regressor_scores(model: MetricRegressor, images: np.ndarray, masks: np.ndarray) -> pd.DataFrame:
    """How well the regressor predicts the targets of held-out images with known masks.

    Parameters
    ----------
    model : MetricRegressor
    images : ndarray of uint8, shape (N, H, W, 3)
    masks : ndarray of int, shape (N, H, W)
        True part masks, values indexing ``model.labels``.

    Returns
    -------
    DataFrame
        ``label, target, n, r2, pearson``: per (label, target) over the images where the target is defined;
        NaN where fewer than 3 are.
    """
    truth = metric_targets(images, masks, model.labels)
    predicted = model.predict(images)
    rows = []
    for i, label in enumerate(model.labels):
        for j, target in enumerate(TARGETS):
            defined = np.isfinite(truth[:, i, j])
            y, y_hat = truth[defined, i, j].astype(np.float64), predicted[defined, i, j].astype(np.float64)
            r2 = pearson = np.nan
            if defined.sum() >= 3 and y.std() > 0:
                r2 = 1.0 - ((y - y_hat) ** 2).sum() / ((y - y.mean()) ** 2).sum()
                pearson = np.corrcoef(y, y_hat)[0, 1] if y_hat.std() > 0 else np.nan
            rows.append({"label": label, "target": target, "n": int(defined.sum()), "r2": r2, "pearson": pearson})
    return pd.DataFrame(rows)


def save_metric_regressor(model: MetricRegressor, path: str | os.PathLike[str]) -> None:
    """Write the model's weights and configuration to one safetensors file (written atomically)."""
    from safetensors.torch import save

    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    metadata = {"labels": json.dumps(list(model.labels)), "width": str(model.width), "targets": json.dumps(TARGETS)}
    write_atomically(path, save(state, metadata=metadata))


def load_metric_regressor(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> MetricRegressor:
    """Read a model written by :func:`save_metric_regressor` (eval mode, frozen).

    Raises
    ------
    FileNotFoundError
        If there is no file.
    ValueError
        If the file is not a metric regressor of this version.
    """
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no metric regressor at {path}")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (a safetensors handle)
        if json.loads(metadata["targets"]) != list(TARGETS):
            raise ValueError(f"targets {metadata['targets']} differ from this version's {list(TARGETS)}")
        model = MetricRegressor(json.loads(metadata["labels"]), width=int(metadata["width"]))
        model.load_state_dict(state)
    except Exception as error:  # safetensors, json and state-dict errors come in many types
        raise ValueError(f"{path} is not a readable metric regressor: {error}") from error
    return model.to(device).eval().requires_grad_(False)
