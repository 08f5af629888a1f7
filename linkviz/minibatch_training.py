"""One seeded minibatch loop for every small supervised model linkviz trains.

A fresh shuffle per epoch and, optionally, a random left-right flip flag per sample, both drawn from one
``torch.Generator`` (seeded with ``seed``, or given) so that a run is reproducible without touching the global
RNG; Adam (or an optimiser of the caller's) with a learning-rate schedule stepped after every optimiser step
(cosine-annealed to 0 by default).  The caller says what a batch's loss is and may act after every step (an EMA,
checkpoints) and after every epoch (validation, model selection).

Used by the reference segmenter, the metric regressor, the MLP link, the few-shot segmenter, the LaViSE
explainer head and the toy world's classifier and generator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler
from tqdm.auto import tqdm

__all__ = ["BatchLoss", "EpochCallback", "ScheduleFactory", "StepCallback", "cosine_annealing", "fit_minibatches"]

#: ``batch_loss(rows, flipped)``: the loss of the samples ``rows`` (int64 [B], on the device), of which those
#: with ``flipped`` (bool [B]) are to be mirrored left-right.
BatchLoss = Callable[[Tensor, Tensor], Tensor]
#: ``schedule(optimizer, total_steps)``: a learning-rate scheduler, stepped once after each of ``total_steps``
#: optimiser steps.
ScheduleFactory = Callable[[Optimizer, int], LRScheduler]
#: ``on_step(step)``: called after optimiser step number ``step`` (counted from 1).
StepCallback = Callable[[int], None]
#: ``on_epoch(epoch, mean_loss)``: called after epoch number ``epoch`` (counted from 0) with the sum of its batch
#: losses, each times its batch size, over the samples drawn in the epoch (those of skipped batches included).
EpochCallback = Callable[[int, float], None]
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def cosine_annealing(optimizer: Optimizer, total_steps: int) -> LRScheduler:
    """The default schedule: the learning rate cosine-annealed from its initial value to 0 over the run."""
    return CosineAnnealingLR(optimizer, T_max=total_steps)


def _steps_per_epoch(n_samples: int, batch_size: int, min_batch_size: int) -> int:
    full, rest = divmod(n_samples, batch_size)
    return full * (batch_size >= min_batch_size) + (0 < rest and rest >= min_batch_size)


def fit_minibatches(model: ModuleT, n_samples: int, batch_loss: BatchLoss, *, epochs: int | None = None,
                    steps: int | None = None, batch_size: int, learning_rate: float | None = None,
                    weight_decay: float = 0.0, optimizer: Optimizer | None = None,
                    schedule: ScheduleFactory | None = cosine_annealing, min_batch_size: int = 1,
                    flips: bool = False, seed: int | torch.Generator, device: str | torch.device = "cpu",
                    on_step: StepCallback | None = None, on_epoch: EpochCallback | None = None,
                    description: str = "training", progress: bool = False) -> ModuleT:
    """Train ``model`` in place over ``n_samples`` samples; returns it in eval mode.

    Parameters
    ----------
    model : nn.Module
        Already on ``device`` and in train mode.
    n_samples : int
        Size of the training set; ``batch_loss`` receives indices into it.
    batch_loss : callable
        See :data:`BatchLoss`.  It may update other modules as a side effect (e.g. a discriminator); the
        optimiser's gradients are zeroed after it returns and before the loss is back-propagated.
    epochs : int, optional
        Passes over the data.
    steps : int, optional
        Optimiser steps instead of ``epochs``: as many epochs as needed, the last one cut short.  Exactly one of
        ``epochs`` and ``steps`` is given.
    batch_size : int
        Samples per step (the last batch of an epoch may be smaller).
    learning_rate : float, optional
        Initial learning rate of the default optimiser, ``Adam(model.parameters(), lr=learning_rate,
        weight_decay=weight_decay)``.
    weight_decay : float
        Its weight decay.
    optimizer : torch.optim.Optimizer, optional
        An optimiser of the caller's instead (another kind, other settings, some of the parameters); exactly one
        of ``learning_rate`` and ``optimizer`` is given.
    schedule : callable or None
        See :data:`ScheduleFactory`; :func:`cosine_annealing` by default, ``None`` for a constant rate.
    min_batch_size : int
        Batches with fewer samples are skipped (their samples count towards the epoch but take no step): 2 for
        BatchNorm in training mode, ``batch_size`` to drop every epoch's incomplete last batch.
    flips : bool
        Draw a flip flag per sample and epoch (probability 1/2); else every flag is False.
    seed : int or torch.Generator
        Seeds the shuffles and flips; a generator is used as it is (and advanced).
    device : str or torch.device
        Where the ``rows`` and ``flipped`` given to ``batch_loss`` live.
    on_step, on_epoch : callable, optional
        See :data:`StepCallback` and :data:`EpochCallback`; the model is in whatever mode they leave it.
    description : str
        Label of the tqdm bar over steps, which shows the running mean loss of the epoch.
    progress : bool
        Show that bar.

    Returns
    -------
    nn.Module
        ``model``, in eval mode.

    Raises
    ------
    ValueError
        For not exactly one of ``epochs`` and ``steps`` or of ``learning_rate`` and ``optimizer``, a setting
        below 1, or ``steps`` with fewer samples than ``min_batch_size``.
    """
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs and steps")
    if (learning_rate is None) == (optimizer is None):
        raise ValueError("give exactly one of learning_rate and optimizer")
    for name, value in (("epochs", epochs), ("steps", steps), ("batch_size", batch_size),
                        ("min_batch_size", min_batch_size)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    steps_per_epoch = _steps_per_epoch(n_samples, batch_size, min_batch_size)
    if steps is not None:
        if steps_per_epoch == 0:
            raise ValueError(f"{n_samples} samples give no batch of at least {min_batch_size}")
        epochs = -(-steps // steps_per_epoch)
    total_steps = steps if steps is not None else epochs * steps_per_epoch
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    scheduler = schedule(optimizer, total_steps) if schedule is not None else None
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    step = 0
    # gradients on even when called under no_grad / inference_mode (e.g. a model trained lazily on first use)
    with torch.inference_mode(False), torch.enable_grad(), tqdm(total=total_steps, desc=description, unit="step",
                                                                 disable=not progress) as bar:
        for epoch in range(epochs):
            order = torch.randperm(n_samples, generator=generator)
            flip = (torch.rand(n_samples, generator=generator) < 0.5) if flips else torch.zeros(n_samples, dtype=bool)
            total, seen = 0.0, 0
            for start in range(0, n_samples, batch_size):
                if step == steps:
                    break  # a run of ``steps`` ends within its last epoch
                rows, flipped = order[start:start + batch_size].to(device), flip[start:start + batch_size].to(device)
                seen += len(rows)
                if len(rows) < min_batch_size:
                    continue
                loss = batch_loss(rows, flipped)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                step += 1
                total += float(loss.detach()) * len(rows)
                bar.update()
                bar.set_postfix(epoch=epoch, loss=f"{total / seen:.4g}", refresh=False)
                if on_step is not None:
                    on_step(step)
            if on_epoch is not None:
                on_epoch(epoch, total / max(1, seen))
    return model.eval()
