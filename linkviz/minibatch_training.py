"""One seeded minibatch loop for the small supervised models (reference segmenter, metric regressor).

Adam with the learning rate cosine-annealed to 0, a fresh shuffle per epoch and, optionally, a random
left-right flip flag per sample, all drawn from one ``torch.Generator`` seeded with ``seed`` so that a run is
reproducible without touching the global RNG.  The caller says what a batch's loss is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["BatchLoss", "fit_minibatches"]

#: ``batch_loss(rows, flipped)``: the loss of the samples ``rows`` (int64 [B], on the device), of which those
#: with ``flipped`` (bool [B]) are to be mirrored left-right.
BatchLoss = Callable[[Tensor, Tensor], Tensor]
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def fit_minibatches(model: ModuleT, n_samples: int, batch_loss: BatchLoss, *, epochs: int, batch_size: int,
                    learning_rate: float, flips: bool, seed: int, device: str | torch.device = "cpu",
                    description: str = "training", progress: bool = False) -> ModuleT:
    """Train ``model`` in place over ``n_samples`` samples; returns it in eval mode.

    Parameters
    ----------
    model : nn.Module
        Already on ``device`` and in train mode.
    n_samples : int
        Size of the training set; ``batch_loss`` receives indices into it.
    batch_loss : callable
        See :data:`BatchLoss`.
    epochs, batch_size : int
        Passes over the data and samples per step (both at least 1).
    learning_rate : float
        Adam's initial learning rate.
    flips : bool
        Draw a flip flag per sample and epoch (probability 1/2); else every flag is False.
    seed : int
        Seeds the shuffles and flips.
    device : str or torch.device
    description : str
        Label of the tqdm bar over epochs, which shows the last epoch's mean loss.
    progress : bool
        Show that bar.

    Raises
    ------
    ValueError
        For ``epochs`` or ``batch_size`` below 1.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    steps_per_epoch = -(-n_samples // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(range(epochs), desc=description, disable=not progress)
    for _ in bar:
        order = torch.randperm(n_samples, generator=generator)
        flip = (torch.rand(n_samples, generator=generator) < 0.5) if flips else torch.zeros(n_samples, dtype=bool)
        total = 0.0
        for start in range(0, n_samples, batch_size):
            rows, flipped = order[start:start + batch_size].to(device), flip[start:start + batch_size].to(device)
            loss = batch_loss(rows, flipped)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(rows)
        bar.set_postfix(loss=f"{total / n_samples:.4g}")
    return model.eval()
