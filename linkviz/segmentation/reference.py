"""A supervised reference part segmenter, trained on renders (images -> ground-truth part masks).

For worlds whose renderer gives part masks (the toy world), this small U-Net-style CNN labels any image of that
world, including generated ones, so few-shot segmenters can be scored against it on images that have no
renderer ground truth.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linkviz.minibatch_training import fit_minibatches
from linkviz.models.modules import eval_mode
from linkviz.segmentation.fewshot import check_masks

__all__ = ["RenderSegmenter", "images_to_tensor", "segment_images", "train_render_segmenter"]


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
    )


class RenderSegmenter(nn.Module):
    """A two-level U-Net: images [N, 3, R, R] in [-1, 1] -> logits [N, n_classes, R, R] (R divisible by 4).

    Parameters
    ----------
    n_classes : int
        Number of part labels (including background).
    width : int
        Channels at full resolution; doubled at each of the two downsamplings.
    """

    def __init__(self, n_classes: int, *, width: int = 16) -> None:
        super().__init__()
        if n_classes < 2 or width < 1:
            raise ValueError(f"need n_classes >= 2 and width >= 1; got {n_classes} and {width}")
        self.n_classes, self.width = int(n_classes), int(width)
        self.down1 = _conv_block(3, width)
        self.down2 = _conv_block(width, 2 * width)
        self.bottom = _conv_block(2 * width, 4 * width)
        self.up2 = _conv_block(6 * width, 2 * width)
        self.up1 = _conv_block(3 * width, width)
        self.head = nn.Conv2d(width, n_classes, 1)

    def forward(self, images: Tensor) -> Tensor:
        """Logits, shape [N, n_classes, R, R], from float images [N, 3, R, R] in [-1, 1]."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] % 4 or images.shape[3] % 4:
            raise ValueError(f"expected images [N, 3, R, R] with R divisible by 4; got {list(images.shape)}")
        full = self.down1(images)
        half = self.down2(F.max_pool2d(full, 2))
        quarter = self.bottom(F.max_pool2d(half, 2))
        half = self.up2(torch.cat([F.interpolate(quarter, scale_factor=2.0, mode="bilinear"), half], 1))
        full = self.up1(torch.cat([F.interpolate(half, scale_factor=2.0, mode="bilinear"), full], 1))
        return self.head(full)


def images_to_tensor(images: np.ndarray | Tensor) -> Tensor:
    """uint8 RGB images [N, R, R, 3] as float [N, 3, R, R] in [-1, 1].

    Raises
    ------
    ValueError
        If the images are not uint8 of shape [N, R, R, 3].
    """
    images = images if isinstance(images, Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images [N, R, R, 3]; got {images.dtype} {list(images.shape)}")
    return images.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_render_segmenter(
    images: np.ndarray | Tensor,
    masks: np.ndarray | Tensor,
    *,
    n_classes: int,
    epochs: int = 30,
    batch_size: int = 8,
    learning_rate: float = 1e-2,
    width: int = 16,
    flips: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> RenderSegmenter:
    """Train a :class:`RenderSegmenter` on rendered images and their ground-truth part masks.

    Parameters
    ----------
    images : ndarray or Tensor of uint8, shape [N, R, R, 3]
        Rendered RGB images (e.g. ``RenderBatch.images``), R divisible by 4.
    masks : ndarray or Tensor of int, shape [N, R, R]
        Part label maps (e.g. ``RenderBatch.part_masks``), ids in ``[0, n_classes)``.
    n_classes : int
        Number of part labels (including background).
    epochs : int
        Passes over the data.
    batch_size : int
        Images per step.
    learning_rate : float
        Adam learning rate (cosine-annealed to 0 over the run).
    width : int
        Network width, see :class:`RenderSegmenter`.
    flips : bool
        Augment with random left-right flips of image and mask together.
    seed : int
        Seeds initialisation, shuffling and flips (the global RNG state is restored afterwards).
    device : str or torch.device
        Where to train; the returned module stays there.
    progress : bool
        Show a tqdm bar over epochs with the last epoch's loss.

    Returns
    -------
    RenderSegmenter
        In eval mode.

    Raises
    ------
    ValueError
        For images and masks that do not match, bad label ids or non-positive settings.
    """
    inputs = images_to_tensor(images)
    masks = check_masks(masks, n_classes=n_classes)
    if len(inputs) != len(masks) or inputs.shape[2:] != masks.shape[1:]:
        raise ValueError(f"images {list(inputs.shape)} (as [N, 3, R, R]) and masks {list(masks.shape)} must have "
                         "the same N and R x R")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RenderSegmenter(n_classes, width=width)
    model.to(device).train()
    inputs, masks = inputs.to(device), masks.to(device)

    def batch_loss(rows: Tensor, flipped: Tensor) -> Tensor:
        x = torch.where(flipped[:, None, None, None], inputs[rows].flip(-1), inputs[rows])
        y = torch.where(flipped[:, None, None], masks[rows].flip(-1), masks[rows])
        return F.cross_entropy(model(x), y)

    return fit_minibatches(model, len(inputs), batch_loss, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, flips=flips, seed=seed, device=device,
                           description="reference segmenter", progress=progress)


@torch.no_grad()
def segment_images(model: RenderSegmenter, images: np.ndarray | Tensor, *, batch_size: int = 64) -> np.ndarray:
    """Part label maps of RGB images.

    Parameters
    ----------
    model : RenderSegmenter
        A trained reference segmenter.
    images : ndarray or Tensor of uint8, shape [N, R, R, 3]
        RGB images (renders, or generator output converted to uint8).
    batch_size : int
        Images per forward pass.

    Returns
    -------
    ndarray of int64, shape [N, R, R]
        The most likely label of each pixel.
    """
    inputs = images_to_tensor(images)
    device = next(model.parameters()).device
    with eval_mode(model):
        chunks = [model(inputs[start:start + batch_size].to(device)).argmax(1).cpu()
                  for start in range(0, len(inputs), batch_size)]
    if not chunks:
        return np.zeros((0, *inputs.shape[2:]), np.int64)
    return torch.cat(chunks).numpy()
