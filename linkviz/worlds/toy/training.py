"""Reproducible training of the toy world's classifier and generator.

Both functions train through :func:`~linkviz.minibatch_training.fit_minibatches`,
draw initial weights and batch order from one ``torch.Generator`` seeded with
``seed`` (never the global RNG), run on CPU or GPU, report progress with
``tqdm.auto`` and return the trained module; :mod:`linkviz.worlds.toy.__main__`
is the command line around them.  Weights are saved with safetensors.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from linkviz.atomic_files import write_atomically
from linkviz.minibatch_training import fit_minibatches

from .classifier_net import ToyResNet
from .discriminator import PatchDiscriminator, discriminator_hinge_loss, generator_hinge_loss
from .generator_net import ToyGenerator, conditioning_vector, grow_state_dict
from .render import RenderBatch

#: Pixel-loss weights of the generator: background 1, parts up to 1 + PART_WEIGHT * AREA_CAP.
PART_WEIGHT = 3.0
AREA_CAP = 10.0
REFERENCE_AREA = 400.0
BOUNDARY_WEIGHT = 4.0
TEXTURE_WEIGHT = 2.0
PERCEPTUAL_WEIGHT = 0.1

NetworkT = TypeVar("NetworkT", bound=nn.Module)


def _images_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _fresh(network_class: Callable[[], NetworkT], generator: torch.Generator) -> NetworkT:
    """A new network whose initial weights are drawn from a seed that ``generator`` supplies.

    A torch module draws its initial weights from the global RNG; here they are drawn on a fork of it, seeded
    from ``generator``, so the weights depend only on ``generator`` and the global RNG is left as it was.

    Parameters
    ----------
    network_class : callable
        Builds the network (:class:`ToyResNet`, :class:`ToyGenerator`, :class:`PatchDiscriminator`).
    generator : torch.Generator
        Supplies the seed (and is advanced by one draw).
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return network_class()


def train_classifier(train_set: RenderBatch, *, epochs: int = 2, batch_size: int = 64, learning_rate: float = 3e-3,
                     seed: int, device: str | torch.device = "cpu", progress: bool = True) -> ToyResNet:
    """Train :class:`ToyResNet` on rendered images with one-cycle AdamW.

    The loop is :func:`~linkviz.minibatch_training.fit_minibatches` with AdamW (weight decay 1e-4), a one-cycle
    schedule peaking at ``learning_rate`` and every epoch's incomplete last batch dropped.

    Parameters
    ----------
    train_set : RenderBatch
        Rendered images (N, 64, 64, 3) with their factor records (labels).
    epochs, batch_size, learning_rate : int, int, float
        Optimisation settings.
    seed : int
        Seeds the weight initialisation and the batch order (one ``torch.Generator``; the global RNG is neither
        used nor changed).
    device : str or torch.device
        Where to train.
    progress : bool
        Show a tqdm bar over the optimiser steps.

    Returns
    -------
    ToyResNet
        The trained network in eval mode, on ``device``.
    """
    generator = torch.Generator().manual_seed(seed)
    model = _fresh(ToyResNet, generator).to(device).train()
    labels = torch.from_numpy(train_set.factors.label).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)

    def one_cycle(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=total_steps)

    def batch_loss(rows: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        x = _images_tensor(train_set.images[rows.cpu().numpy()]).to(device)
        return F.cross_entropy(model(x), labels[rows])

    return fit_minibatches(model, len(train_set), batch_loss, epochs=epochs, batch_size=batch_size,
                           optimizer=optimiser, schedule=one_cycle, min_batch_size=batch_size, seed=generator,
                           device=device, description="classifier", progress=progress)


@torch.no_grad()
def classifier_accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 256,
                        device: str | torch.device = "cpu") -> np.ndarray:
    """Per-image correctness of a toy classifier, shape (N,) bool, from images (N, 64, 64, 3) uint8."""
    predictions = []
    for start in range(0, len(images), batch_size):
        x = _images_tensor(images[start:start + batch_size]).to(device)
        predictions.append(model(x).argmax(1).cpu())
    return torch.cat(predictions).numpy() == labels


def pixel_weights(part_masks: torch.Tensor, texture_masks: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss weights emphasising small parts, part boundaries and textures.

    Parameters
    ----------
    part_masks, texture_masks : Tensor of int64, shape (N, H, W)

    Returns
    -------
    Tensor of float32, shape (N, 1, H, W), mean 1 per image.
    """
    n_labels = int(part_masks.max()) + 1
    onehot = F.one_hot(part_masks, n_labels).float()
    areas = onehot.sum((1, 2))  # (N, labels)
    inverse_area = (REFERENCE_AREA / areas.clamp(min=1.0)).clamp(max=AREA_CAP)
    inverse_area[:, 0] = 0.0
    weights = 1.0 + PART_WEIGHT * torch.gather(inverse_area, 1, part_masks.flatten(1)).view_as(part_masks.float())
    padded = F.pad(part_masks[:, None].float(), (1, 1, 1, 1), mode="replicate")
    boundary = ((padded[..., 1:-1, :-2] != padded[..., 1:-1, 2:]) | (padded[..., :-2, 1:-1] != padded[..., 2:, 1:-1]))
    weights = weights[:, None] + BOUNDARY_WEIGHT * boundary.float() + TEXTURE_WEIGHT * (texture_masks[:, None] >= 2)
    return weights / weights.mean((1, 2, 3), keepdim=True)


def _perceptual_features(classifier: ToyResNet, images: torch.Tensor) -> list[torch.Tensor]:
    features, x = [], images
    for stage in classifier.stages()[:3]:
        x = stage(x)
        features.append(x)
    return features


def train_generator(train_set: RenderBatch, classifier: ToyResNet, *, steps: int, batch_size: int = 32,
                    learning_rate: float = 2e-3, ema_decay: float = 0.995, seed: int,
                    device: str | torch.device = "cpu", progress: bool = True,
                    checkpoint: Callable[[ToyGenerator, int], None] | None = None,
                    checkpoint_every: int = 250, initial_state: dict[str, torch.Tensor] | None = None,
                    adversarial_weight: float = 0.0, discriminator_learning_rate: float = 2e-4
                    ) -> ToyGenerator:
    """Train the factor-supervised :class:`ToyGenerator` to reproduce renders from their factors.

    Loss: pixel L1 weighted by :func:`pixel_weights`, plus ``PERCEPTUAL_WEIGHT``
    times the L1 between the classifier's first three stages on generated and
    rendered images, plus ``adversarial_weight`` times a hinge loss against a
    :class:`~linkviz.worlds.toy.discriminator.PatchDiscriminator` trained alongside
    (off by default; it sharpens edges when fine-tuning a trained generator).
    Adam with cosine decay to 5 %; the returned generator is the exponential
    moving average of the weights.

    The loop is :func:`~linkviz.minibatch_training.fit_minibatches` run for ``steps``
    optimiser steps over shuffled epochs.  What does not fit its one model and one
    optimiser stays here: the discriminator, which must see each batch's generated
    images before the generator steps, takes its own optimiser step inside the batch
    loss; the EMA update and the checkpoints run after every step.

    Parameters
    ----------
    train_set : RenderBatch
        Renders with part and texture masks and factor records.
    classifier : ToyResNet
        Frozen classifier for the perceptual loss.
    steps : int
        Optimisation steps.
    seed : int
        Seeds initialisation (generator and discriminator) and batch order through one ``torch.Generator``
        (the global RNG is neither used nor changed), and the per-class ``w_avg``.
    checkpoint : callable, optional
        Called as ``checkpoint(ema_generator, step)`` every ``checkpoint_every`` steps.
    initial_state : dict, optional
        Continue from these weights (e.g. the committed generator) instead of a fresh start; weights
        of an earlier, narrower architecture are grown with :func:`grow_state_dict`.
    adversarial_weight : float
        Weight of the patch discriminator's hinge loss; 0 trains without a discriminator.
    discriminator_learning_rate : float
        Constant Adam learning rate of the discriminator.

    Returns
    -------
    ToyGenerator
        The EMA generator in eval mode with per-class ``w_avg`` set.
    """
    rng = torch.Generator().manual_seed(seed)
    generator = _fresh(ToyGenerator, rng)
    if initial_state is not None:
        grown = grow_state_dict(generator, initial_state)
        if grown:
            tqdm.write(f"grown or new tensors: {', '.join(grown)}")
    generator = generator.to(device)
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    classifier = classifier.to(device).eval().requires_grad_(False)
    vectors = torch.from_numpy(conditioning_vector(train_set.factors))
    images = torch.from_numpy(train_set.images)
    part_masks = torch.from_numpy(train_set.part_masks.astype(np.int64))
    texture_masks = torch.from_numpy(train_set.texture_masks.astype(np.int64))
    parameters = list(generator.mapping.parameters()) + list(generator.synthesis.parameters())
    optimiser = torch.optim.Adam(parameters, lr=learning_rate, betas=(0.9, 0.99))

    def cosine_to_5_percent(optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))

    discriminator, discriminator_optimiser = None, None
    if adversarial_weight > 0:
        discriminator = _fresh(PatchDiscriminator, rng).to(device)
        discriminator_optimiser = torch.optim.Adam(discriminator.parameters(), lr=discriminator_learning_rate,
                                                   betas=(0.0, 0.99))

    def batch_loss(rows: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        index = rows.cpu()
        target = images[index].permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(device)
        weights = pixel_weights(part_masks[index], texture_masks[index]).to(device)
        conditioning = vectors[index].to(device)
        w = generator.mapping.embed(conditioning)
        output = generator.synthesis(w[:, None].expand(-1, generator.num_ws, -1))
        loss = (weights * (output - target).abs()).mean()
        for fake, real in zip(_perceptual_features(classifier, output), _perceptual_features(classifier, target)):
            loss = loss + PERCEPTUAL_WEIGHT * (fake - real).abs().mean()
        if discriminator is not None:
            discriminator_loss = discriminator_hinge_loss(discriminator(target), discriminator(output.detach()))
            discriminator_optimiser.zero_grad(set_to_none=True)
            discriminator_loss.backward()
            discriminator_optimiser.step()
            loss = loss + adversarial_weight * generator_hinge_loss(discriminator(output))
        return loss

    def after_step(step: int) -> None:
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), generator.parameters()):
                p_ema.lerp_(p, 1.0 - ema_decay)
        if checkpoint is not None and step % checkpoint_every == 0:
            checkpoint(ema, step)

    generator.train()
    fit_minibatches(generator, len(train_set), batch_loss, steps=steps, batch_size=batch_size, optimizer=optimiser,
                    schedule=cosine_to_5_percent, seed=rng, device=device, on_step=after_step,
                    description="generator", progress=progress)
    ema.update_w_avg(samples_per_class=2000, seed=seed)
    return ema


def save_weights(module: torch.nn.Module, path: str | Path, *, metadata: dict | None = None) -> None:
    """Save a module's state dict with safetensors, plus a ``.json`` sidecar of metadata."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    write_atomically(path, save(state))
    if metadata is not None:
        write_atomically(path.with_suffix(".json"), json.dumps(metadata, indent=2, sort_keys=True).encode())


class Stopwatch:
    """Wall-clock seconds since creation."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
