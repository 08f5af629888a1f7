"""Few-shot part segmentation from generator features: a small per-pixel CNN trained on k labelled images.

The network is the "FewShotCNN-S" of "repurposing GANs" (Tritrong et al.) as used by the Linking in Style
reference: 3x3 convolutions with dilations 1, 2, 1, 2, 1, channels in -> 128 -> 64 -> 64 -> 32 -> n_classes,
LeakyReLU(0.2) between layers, trained with per-pixel cross-entropy, Adam (lr 1e-3, weight decay 1e-3) and a
step schedule (x0.1 after 50 epochs) for 100 epochs, one image per step.

Other heads are options of the same module: ``channels=(64,), kernel_size=1`` is a per-pixel MLP, which on the
toy world beats the reference head on every class while training several times faster (benchmarks/README.md,
"Toy part segmenter").  Predictions can be restricted per image to the labels its class may show
(``allowed_labels``, see :mod:`linkviz.segmentation.class_conditional`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linkviz.minibatch_training import ScheduleFactory, cosine_annealing, fit_minibatches
from linkviz.models.modules import eval_mode

__all__ = ["PartSegmenter", "check_masks", "part_log_probs", "predict_parts", "train_few_shot"]

#: The reference head (FewShotCNN-S): hidden widths and dilations of its 3x3 convolutions.
REFERENCE_CHANNELS: tuple[int, ...] = (128, 64, 64, 32)


def _alternating_dilations(n: int) -> tuple[int, ...]:
    """1, 2, 1, 2, ... of length n (the reference's pattern)."""
    return tuple(1 + i % 2 for i in range(n))


class PartSegmenter(nn.Module):
    """Per-pixel classifier of generator features.

    Features are standardised per channel with the stored ``feature_mean`` and ``feature_std`` (set by
    :func:`train_few_shot` from the labelled images; identity for a fresh module), then passed through the CNN.

    Parameters
    ----------
    in_channels : int
        Feature channels C.
    n_classes : int
        Number of part labels (including background).
    channels : sequence of int
        Widths of the hidden layers (the reference's by default; ``()`` for a linear head).
    dilations : sequence of int, optional
        Dilation of each convolution; one more than ``channels`` (the last produces the logits). Default
        1, 2, 1, 2, ... (the reference's 1, 2, 1, 2, 1 for its four hidden layers).
    kernel_size : int
        Odd side length of every convolution: 3 as in the reference, 1 for a per-pixel MLP.
    negative_slope : float
        Slope of the LeakyReLU between layers.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        *,
        channels: Sequence[int] = REFERENCE_CHANNELS,
        dilations: Sequence[int] | None = None,
        kernel_size: int = 3,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        channels = tuple(int(width) for width in channels)
        dilations = _alternating_dilations(len(channels) + 1) if dilations is None else tuple(map(int, dilations))
        if len(dilations) != len(channels) + 1:
            raise ValueError(f"need one dilation per convolution: {len(channels) + 1} for channels {channels}, "
                             f"got {dilations}")
        if in_channels < 1 or n_classes < 2:
            raise ValueError(f"need in_channels >= 1 and n_classes >= 2; got {in_channels} and {n_classes}")
        if kernel_size < 1 or kernel_size % 2 == 0 or min(channels, default=1) < 1 or min(dilations) < 1:
            raise ValueError(f"need an odd kernel_size and positive widths and dilations; got kernel_size="
                             f"{kernel_size}, channels {channels}, dilations {dilations}")
        self.in_channels, self.n_classes = int(in_channels), int(n_classes)
        self.channels, self.dilations, self.kernel_size = channels, dilations, int(kernel_size)
        self.negative_slope = float(negative_slope)
        widths = (self.in_channels, *channels, self.n_classes)
        layers: list[nn.Module] = []
        for i, dilation in enumerate(dilations):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], self.kernel_size,
                                    padding=dilation * (self.kernel_size // 2), dilation=dilation))
            if i < len(dilations) - 1:
                layers.append(nn.LeakyReLU(negative_slope))
        self.net = nn.Sequential(*layers)
        self.register_buffer("feature_mean", torch.zeros(self.in_channels))
        self.register_buffer("feature_std", torch.ones(self.in_channels))

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-able: ``PartSegmenter(**segmenter.config)`` builds the same network."""
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "channels": list(self.channels),
                "dilations": list(self.dilations), "kernel_size": self.kernel_size,
                "negative_slope": self.negative_slope}

    def forward(self, features: Tensor) -> Tensor:
        """Logits, shape [N, n_classes, R, R], from features of shape [N, C, R, R]."""
        if features.ndim != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"expected features [N, {self.in_channels}, R, R]; got {list(features.shape)}")
        scaled = (features - self.feature_mean[:, None, None]) / self.feature_std[:, None, None]
        return self.net(scaled)


def check_masks(masks: Tensor | np.ndarray, *, n_classes: int, name: str = "masks") -> Tensor:
    """Return integer label maps as an int64 tensor after checking their ids.

    Parameters
    ----------
    masks : Tensor or ndarray of int, shape [N, R, R]
        Label maps with ids in ``[0, n_classes)``.
    n_classes : int
        Number of labels.
    name : str
        What to call the array in error messages.

    Returns
    -------
    Tensor of int64, shape [N, R, R]

    Raises
    ------
    ValueError
        If the maps are not 3-D integer arrays or hold ids outside ``[0, n_classes)``.
    """
    masks = torch.as_tensor(np.asarray(masks) if not isinstance(masks, Tensor) else masks)
    if masks.ndim != 3 or masks.is_floating_point() or masks.is_complex() or masks.dtype == torch.bool:
        raise ValueError(f"{name} must be integer label maps [N, R, R]; got {masks.dtype} {list(masks.shape)}")
    masks = masks.long()
    bad = torch.unique(masks[(masks < 0) | (masks >= n_classes)])
    if len(bad):
        raise ValueError(f"{name} hold label ids {bad[:10].tolist()} outside [0, {n_classes}) "
                         f"(n_classes={n_classes})")
    return masks


def _check_features(features: Tensor, *, name: str = "features") -> Tensor:
    features = torch.as_tensor(features)
    if features.ndim != 4 or not features.is_floating_point():
        raise ValueError(f"{name} must be a float tensor [N, C, R, R]; got {features.dtype} {list(features.shape)}")
    if not torch.isfinite(features).all():
        raise ValueError(f"{name} contain NaN or inf values")
    return features


def train_few_shot(
    features: Tensor,
    masks: Tensor | np.ndarray,
    *,
    n_classes: int,
    epochs: int = 100,
    batch_size: int = 1,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-3,
    lr_step: int = 50,
    lr_gamma: float = 0.1,
    schedule: Literal["step", "cosine"] = "step",
    flips: bool = False,
    channels: Sequence[int] = REFERENCE_CHANNELS,
    dilations: Sequence[int] | None = None,
    kernel_size: int = 3,
    pixels_per_image: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> PartSegmenter:
    """Train a :class:`PartSegmenter` on k labelled images.

    The loop is :func:`~linkviz.minibatch_training.fit_minibatches` with a step schedule (the reference's) or
    cosine annealing. The defaults are the reference's; the toy world's segmenter
    (:func:`linkviz.worlds.toy.part_segmenter.toy_part_segmenter`) uses ``channels=(64,), kernel_size=1,
    batch_size=5, epochs=30, schedule="cosine"``.

    Parameters
    ----------
    features : Tensor, shape [K, C, R, R]
        Generator features of the labelled images (:func:`~linkviz.segmentation.generator_features`).
    masks : Tensor or ndarray of int, shape [K, R, R]
        Their part label maps, ids in ``[0, n_classes)``.
    n_classes : int
        Number of part labels (including background).
    epochs : int
        Passes over the K images.
    batch_size : int
        Images per optimiser step (the reference used 1).
    learning_rate, weight_decay : float
        Adam settings.
    lr_step, lr_gamma : int, float
        With ``schedule="step"``, the learning rate is multiplied by ``lr_gamma`` every ``lr_step`` epochs.
    schedule : {"step", "cosine"}
        Step schedule, or the learning rate cosine-annealed to 0 over the run.
    flips : bool
        Mirror each image's features and mask left-right with probability 1/2 per epoch (augmentation; no
        effect on a per-pixel head, ``kernel_size=1``, which treats pixels independently).
    channels, dilations, kernel_size
        The head's architecture; see :class:`PartSegmenter`.
    pixels_per_image : int, optional
        For a per-pixel head (``kernel_size=1``) only: each step uses this many pixels of each image, drawn
        uniformly with replacement, instead of all of them (on the toy world 512 of 4096 lose nothing and train
        several times faster).
    seed : int
        Seeds the initialisation and the order of images (the global RNG state is restored afterwards).
    device : str or torch.device
        Where to train; the returned module stays there.
    progress : bool
        Show a tqdm bar over the optimiser steps with the epoch's running loss.

    Returns
    -------
    PartSegmenter
        In eval mode, with the labelled features' per-channel mean and standard deviation stored.

    Raises
    ------
    ValueError
        For features and masks that do not match in number or size, bad label ids or non-positive settings.
    """
    features = _check_features(features)
    masks = check_masks(masks, n_classes=n_classes)
    if len(features) != len(masks) or features.shape[2:] != masks.shape[1:]:
        raise ValueError(f"features {list(features.shape)} and masks {list(masks.shape)} must have the same N and "
                         "R x R (compute features at the mask resolution with generator_features(resolution=R))")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("lr_step", lr_step)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if schedule not in ("step", "cosine"):
        raise ValueError(f"schedule must be 'step' or 'cosine'; got {schedule!r}")
    if pixels_per_image is not None and (pixels_per_image < 1 or kernel_size != 1):
        raise ValueError(f"pixels_per_image needs a per-pixel head (kernel_size=1) and a positive count; got "
                         f"{pixels_per_image} with kernel_size={kernel_size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        segmenter = PartSegmenter(features.shape[1], n_classes, channels=channels, dilations=dilations,
                                  kernel_size=kernel_size)
    std = features.std(dim=(0, 2, 3)) if features[:, :1].numel() > 1 else torch.ones(features.shape[1])
    segmenter.feature_mean.copy_(features.mean(dim=(0, 2, 3)))
    segmenter.feature_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
    segmenter.to(device).train()
    features, masks = features.to(device), masks.to(device)
    # StepLR stepped per optimiser step, every lr_step epochs' worth of steps: the reference's per-epoch schedule
    steps_per_epoch = -(-len(features) // batch_size)

    def step_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step * steps_per_epoch, gamma=lr_gamma)

    if pixels_per_image is not None:
        return _fit_pixels(segmenter, features, masks, pixels_per_image=pixels_per_image, epochs=epochs,
                           batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
                           schedule=step_schedule if schedule == "step" else cosine_annealing, seed=seed,
                           device=device, progress=progress)

    def batch_loss(rows: Tensor, flipped: Tensor) -> Tensor:
        batch, target = features[rows], masks[rows]
        if flipped.any():
            batch = torch.where(flipped[:, None, None, None], batch.flip(-1), batch)
            target = torch.where(flipped[:, None, None], target.flip(-1), target)
        return F.cross_entropy(segmenter(batch), target)

    return fit_minibatches(segmenter, len(features), batch_loss, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, weight_decay=weight_decay,
                           schedule=step_schedule if schedule == "step" else cosine_annealing, flips=flips,
                           seed=seed, device=device, description="few-shot segmenter", progress=progress)


def _fit_pixels(segmenter: PartSegmenter, features: Tensor, masks: Tensor, *, pixels_per_image: int,
                epochs: int, batch_size: int, learning_rate: float, weight_decay: float,
                schedule: ScheduleFactory, seed: int, device: str | torch.device, progress: bool) -> PartSegmenter:
    """The training loop of a per-pixel head on ``pixels_per_image`` random pixels of each image per step."""
    k, c = features.shape[:2]
    pixels = features.permute(0, 2, 3, 1).reshape(k, -1, c)                    # [K, R*R, C]: rows gather fast
    labels = masks.reshape(k, -1)
    draws = torch.Generator().manual_seed(seed + 1)

    def batch_loss(rows: Tensor, flipped: Tensor) -> Tensor:
        chosen = torch.randint(0, pixels.shape[1], (len(rows), pixels_per_image), generator=draws).to(device)
        batch = pixels[rows[:, None], chosen].permute(0, 2, 1)[..., None].contiguous()  # [B, C, P, 1]
        return F.cross_entropy(segmenter(batch), labels[rows[:, None], chosen][..., None])

    return fit_minibatches(segmenter, k, batch_loss, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, weight_decay=weight_decay, schedule=schedule, seed=seed,
                           device=device, description="few-shot segmenter", progress=progress)


def _check_allowed(allowed_labels: Tensor | np.ndarray, *, n: int, n_classes: int) -> Tensor:
    allowed = torch.as_tensor(np.asarray(allowed_labels) if not isinstance(allowed_labels, Tensor) else allowed_labels)
    if allowed.dtype != torch.bool or allowed.shape not in ((n_classes,), (n, n_classes)):
        raise ValueError(f"allowed_labels must be a bool mask [{n_classes}] or [{n}, {n_classes}] (one row per "
                         f"image; see class_label_mask); got {allowed.dtype} {list(allowed.shape)}")
    allowed = allowed.expand(n, n_classes)
    if not allowed.any(1).all():
        raise ValueError(f"allowed_labels allow no label for images {torch.nonzero(~allowed.any(1))[:10, 0].tolist()}")
    return allowed


@torch.no_grad()
def part_log_probs(segmenter: PartSegmenter, features: Tensor, *, batch_size: int = 8) -> Tensor:
    """Per-pixel log-probabilities of every label (log-softmax of the logits).

    Parameters
    ----------
    segmenter : PartSegmenter
        A trained segmenter.
    features : Tensor, shape [N, C, R, R]
        Generator features of the images.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    Tensor of float32, shape [N, n_classes, R, R]
        On the device of ``features``.
    """
    features = _check_features(features)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = segmenter.feature_mean.device
    with eval_mode(segmenter):
        chunks = [segmenter(features[start:start + batch_size].to(device)).log_softmax(1).to(features.device)
                  for start in range(0, len(features), batch_size)]
    if not chunks:
        return torch.zeros((0, segmenter.n_classes, *features.shape[2:]), device=features.device)
    return torch.cat(chunks)


@torch.no_grad()
def predict_parts(segmenter: PartSegmenter, features: Tensor, *, batch_size: int = 8,
                  allowed_labels: Tensor | np.ndarray | None = None) -> Tensor:
    """Part label maps of generated images, optionally restricted per image to the labels its class may show.

    Parameters
    ----------
    segmenter : PartSegmenter
        A trained segmenter.
    features : Tensor, shape [N, C, R, R]
        Generator features of the images.
    batch_size : int
        Images per forward pass.
    allowed_labels : Tensor or ndarray of bool, shape [N, n_classes] or [n_classes], optional
        Labels each image may be given (e.g. background and the parts of the sample's known class,
        :func:`~linkviz.segmentation.class_label_mask`); each pixel gets its most likely allowed label.

    Returns
    -------
    Tensor of int64, shape [N, R, R]
        The most likely (allowed) label of each pixel, on the device of ``features``.

    Raises
    ------
    ValueError
        For features that do not match the segmenter, or a malformed ``allowed_labels`` (wrong shape, not
        bool, a row allowing nothing).
    """
    features = _check_features(features)
    allowed = None
    if allowed_labels is not None:
        allowed = _check_allowed(allowed_labels, n=len(features), n_classes=segmenter.n_classes)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = segmenter.feature_mean.device
    chunks = []
    with eval_mode(segmenter):
        for start in range(0, len(features), batch_size):
            logits = segmenter(features[start:start + batch_size].to(device))
            if allowed is not None:
                keep = allowed[start:start + batch_size].to(device)[:, :, None, None]
                logits = logits.masked_fill(~keep, float("-inf"))
            chunks.append(logits.argmax(1).to(features.device))
    if not chunks:
        return torch.zeros((0, *features.shape[2:]), dtype=torch.long, device=features.device)
    return torch.cat(chunks)
