"""Reference models trained on toy renders, cached on disk: the part segmenter and the metric regressor.

Both are trained on a class-balanced render set (:func:`~linkviz.worlds.toy.render_set`) and stored as one
safetensors file in the folder the caller gives, named by a hash of every training argument and of the
renderer's version; a later call with the same arguments loads the file, and a corrupt file is reported,
deleted and trained again.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from linkviz.atomic_files import write_atomically
from linkviz.hashing import hash_arguments, hash_state
from linkviz.segmentation.reference import RenderSegmenter, train_render_segmenter
from linkviz.worlds.toy.dataset import RENDERER_VERSION, render_set
from linkviz.worlds.toy.factors import PART_NAMES
from linkviz.worlds.toy.metric_regressor import (
    MetricRegressor,
    load_metric_regressor,
    save_metric_regressor,
    train_metric_regressor,
)

__all__ = ["model_identity", "toy_metric_regressor", "toy_render_segmenter"]

_FORMAT_VERSION = 2  # 2: the key holds the part names and the trainer's other defaults


def _trainer_defaults(train: Callable[..., nn.Module], given: tuple[str, ...]) -> dict[str, Any]:
    """The keyword defaults of ``train`` not given explicitly (batch size, learning rate, flips, ...): they shape
    the trained model, so a change of one must not load a model trained with the old value."""
    skipped = {*given, "device", "progress"}
    return {name: parameter.default for name, parameter in inspect.signature(train).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is not inspect.Parameter.empty
            and name not in skipped}


def _cached(path: Path, load: Callable[[Path], nn.Module], train: Callable[[], nn.Module],
            save: Callable[[nn.Module, Path], None]) -> nn.Module:
    if path.exists():
        try:
            return load(path)
        except (ValueError, OSError, RuntimeError) as error:
            warnings.warn(f"corrupt cached model {path} ({error}); training again", stacklevel=3)
            path.unlink()
    model = train()
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, path)
    return model


def toy_metric_regressor(
    cache_dir: str | os.PathLike[str],
    *,
    samples_per_class: int = 1000,
    resolution: int = 64,
    epochs: int = 20,
    width: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MetricRegressor:
    """A :class:`~linkviz.worlds.toy.metric_regressor.MetricRegressor` of all toy part labels, trained or loaded.

    Parameters
    ----------
    cache_dir : path
        Folder of the render cache and of the model file ``metric_regressor_<key>.safetensors``.
    samples_per_class : int
        Renders per class to train on.
    resolution : int
        Render side length (the generator's, 64, for generated images).
    epochs, width, seed
        As in :func:`~linkviz.worlds.toy.metric_regressor.train_metric_regressor`; the renders use ``seed`` too.
    device : str or torch.device
    progress : bool

    Returns
    -------
    MetricRegressor
        In eval mode, on ``device``.
    """
    key = hash_arguments(kind="metric_regressor", format=_FORMAT_VERSION, renderer=RENDERER_VERSION,
                         samples_per_class=samples_per_class, resolution=resolution, epochs=epochs, width=width,
                         seed=seed, part_names=list(PART_NAMES),
                         trainer=_trainer_defaults(train_metric_regressor, ("epochs", "width", "seed")))

    def train() -> MetricRegressor:
        renders = render_set(samples_per_class, seed=seed, resolution=resolution, cache_dir=cache_dir)
        return train_metric_regressor(renders.images, renders.part_masks, PART_NAMES, epochs=epochs, width=width,
                                      seed=seed, device=device, progress=progress)

    model = _cached(Path(cache_dir) / f"metric_regressor_{key}.safetensors",
                    lambda path: load_metric_regressor(path, device=device), train, save_metric_regressor)
    return model.to(device).eval()


def _save_segmenter(model: RenderSegmenter, path: Path) -> None:
    from safetensors.torch import save

    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    write_atomically(path, save(state, metadata={"n_classes": str(model.n_classes), "width": str(model.width)}))


def _load_segmenter(path: Path, device: str | torch.device) -> RenderSegmenter:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (a safetensors handle)
        model = RenderSegmenter(int(metadata["n_classes"]), width=int(metadata["width"]))
        model.load_state_dict(state)
    except Exception as error:  # safetensors, metadata and state-dict errors come in many types
        raise ValueError(f"{path} is not a readable render segmenter: {error}") from error
    return model.to(device).eval().requires_grad_(False)


def toy_render_segmenter(
    cache_dir: str | os.PathLike[str],
    *,
    samples_per_class: int = 300,
    resolution: int = 64,
    epochs: int = 20,
    width: int = 8,
    uniform_background_hue: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> RenderSegmenter:
    """The supervised reference part segmenter of the toy world (:data:`PART_NAMES`), trained or loaded.

    Parameters
    ----------
    cache_dir : path
        Folder of the render cache and of the model file ``render_segmenter_<key>.safetensors``.
    samples_per_class : int
        Renders per class to train on.
    resolution : int
        Render side length.
    uniform_background_hue : bool
        Train on renders whose background hues are drawn uniformly for every class
        (:func:`~linkviz.worlds.toy.dataset.render_set`), so that the reference cannot learn the planted
        sky-means-tree correlation that the classifier under study uses.  (Measured on 200 renders: mIoU 0.792
        with it vs 0.793 without on uniform backgrounds, 0.786 vs 0.807 on the prior's backgrounds.)
    epochs, width, seed
        As in :func:`~linkviz.segmentation.train_render_segmenter`; the renders use ``seed`` too.
    device : str or torch.device
    progress : bool

    Returns
    -------
    RenderSegmenter
        In eval mode, on ``device``.
    """
    key = hash_arguments(kind="render_segmenter", format=_FORMAT_VERSION, renderer=RENDERER_VERSION,
                         samples_per_class=samples_per_class, resolution=resolution, epochs=epochs, width=width,
                         seed=seed, uniform_background_hue=uniform_background_hue, part_names=list(PART_NAMES),
                         trainer=_trainer_defaults(train_render_segmenter, ("n_classes", "epochs", "width", "seed")))

    def train() -> RenderSegmenter:
        renders = render_set(samples_per_class, seed=seed, resolution=resolution,
                             uniform_background_hue=uniform_background_hue, cache_dir=cache_dir)
        return train_render_segmenter(renders.images, renders.part_masks, n_classes=len(PART_NAMES), epochs=epochs,
                                      width=width, seed=seed, device=device, progress=progress)

    model = _cached(Path(cache_dir) / f"render_segmenter_{key}.safetensors",
                    lambda path: _load_segmenter(path, device), train, _save_segmenter)
    return model.to(device).eval()


def model_identity(kind: str, model: nn.Module) -> str:
    """A string naming ``model`` by its kind and weights, e.g. for :func:`~linkviz.quantify.sweep_changes`."""
    return f"{kind}-{hash_state(model)}"

