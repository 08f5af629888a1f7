"""Few-shot part segmentation from generator features: a small per-pixel CNN trained on k labelled images.

The network is the "FewShotCNN-S" of "repurposing GANs" (Tritrong et al.) as used by the Linking in Style
reference: 3x3 convolutions with dilations 1, 2, 1, 2, 1, channels in -> 128 -> 64 -> 64 -> 32 -> n_classes,
LeakyReLU(0.2) between layers, trained with per-pixel cross-entropy, Adam (lr 1e-3, weight decay 1e-3) and a
step schedule (x0.1 after 50 epochs) for 100 epochs, one image per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linkviz.minibatch_training import fit_minibatches
from linkviz.models.modules import eval_mode

__all__ = ["PartSegmenter", "check_masks", "predict_parts", "train_few_shot"]


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
        Widths of the hidden layers.
    dilations : sequence of int
        Dilation of each 3x3 convolution; one more than ``channels`` (the last produces the logits).
    negative_slope : float
        Slope of the LeakyReLU between layers.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        *,
        channels: Sequence[int] = (128, 64, 64, 32),
        dilations: Sequence[int] = (1, 2, 1, 2, 1),
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if len(dilations) != len(channels) + 1:
            raise ValueError(f"need one dilation per convolution: {len(channels) + 1} for channels {tuple(channels)}, "
                             f"got {tuple(dilations)}")
        if in_channels < 1 or n_classes < 2:
            raise ValueError(f"need in_channels >= 1 and n_classes >= 2; got {in_channels} and {n_classes}")
        self.in_channels, self.n_classes = int(in_channels), int(n_classes)
        widths = (self.in_channels, *channels, self.n_classes)
        layers: list[nn.Module] = []
        for i, dilation in enumerate(dilations):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], 3, padding=dilation, dilation=dilation))
            if i < len(dilations) - 1:
                layers.append(nn.LeakyReLU(negative_slope))
        self.net = nn.Sequential(*layers)
        self.register_buffer("feature_mean", torch.zeros(self.in_channels))
        self.register_buffer("feature_std", torch.ones(self.in_channels))

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
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> PartSegmenter:
    """Train a :class:`PartSegmenter` on k labelled images.

    The loop is :func:`~linkviz.minibatch_training.fit_minibatches` (no flips) with a step schedule.

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
        The learning rate is multiplied by ``lr_gamma`` every ``lr_step`` epochs.
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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        segmenter = PartSegmenter(features.shape[1], n_classes)
    std = features.std(dim=(0, 2, 3)) if features[:, :1].numel() > 1 else torch.ones(features.shape[1])
    segmenter.feature_mean.copy_(features.mean(dim=(0, 2, 3)))
    segmenter.feature_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
    segmenter.to(device).train()
    features, masks = features.to(device), masks.to(device)
    # StepLR stepped per optimiser step, every lr_step epochs' worth of steps: the reference's per-epoch schedule
    steps_per_epoch = -(-len(features) // batch_size)

    def step_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step * steps_per_epoch, gamma=lr_gamma)

    def batch_loss(rows: Tensor, flipped: Tensor) -> Tensor:
        return F.cross_entropy(segmenter(features[rows]), masks[rows])

    return fit_minibatches(segmenter, len(features), batch_loss, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, weight_decay=weight_decay, schedule=step_schedule,
                           seed=seed, device=device, description="few-shot segmenter", progress=progress)


@torch.no_grad()
def predict_parts(segmenter: PartSegmenter, features: Tensor, *, batch_size: int = 8) -> Tensor:
    """Part label maps of generated images.

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
    Tensor of int64, shape [N, R, R]
        The most likely label of each pixel, on the device of ``features``.
    """
    features = _check_features(features)
    device = segmenter.feature_mean.device
    with eval_mode(segmenter):
        chunks = [segmenter(features[start:start + batch_size].to(device)).argmax(1).to(features.device)
                  for start in range(0, len(features), batch_size)]
    if not chunks:
        return torch.zeros((0, *features.shape[2:]), dtype=torch.long, device=features.device)
    return torch.cat(chunks)
