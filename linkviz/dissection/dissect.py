"""Network Dissection of one layer: thresholds, IoU tally and unit labels, with a correctly keyed cache."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..cache import ChunkedStore, entry_directory
from ..engines import Engine, LocalEngine, torch_threads
from ..hashing import hash_arguments, hash_state
from ..models.classifier import Classifier, ClassifierSpec, unwrap_classifier
from ..models.hooks import resolve_module
from ..models.modules import eval_mode, module_device
from .chunked_passes import TALLY_ARRAYS, THRESHOLD_ARRAYS, DissectionPasses
from .probe_dataset import ProbeDataset
from .quantile import lite_level
from .tally import Mode, TallyCounts, best_labels, iou_matrix

__all__ = ["DETECTOR_IOU", "DissectionResult", "dissect", "dissection_cache_key"]

#: Probe images per chunk of work and of the cache, by default.
CHUNK_IMAGES = 256
#: A unit is a detector of its best concept if its IoU is strictly above this (Bau et al. 2017).
DETECTOR_IOU = 0.04
_CACHE_VERSION = 3  # 3: one chunk per chunk_images images and pass, resumable; the model's type in the key
_CACHE_NAMESPACE = "dissection"
_UPSAMPLING = "bilinear, align_corners=False, to the segmentation resolution; unit on where value > threshold"


@dataclasses.dataclass(frozen=True, eq=False)
class DissectionResult:
    """Network Dissection of one layer.

    Attributes
    ----------
    layer : str
        Dotted module name.
    mode : {"paper", "lite"}
    quantile : float
        Top fraction of activations above the threshold (0.005).
    level : float
        Quantile level the thresholds were read at (``1 - quantile``, or Lite's 994/999).
    categories : tuple of str
        Categories dissected, in order.
    label_names : tuple of str, length L
    label_category : ndarray of int64, shape (L,)
        Primary category of each label (index into ``categories``; -1 = skipped).
    thresholds : ndarray of float64, shape (C,)
    counts : TallyCounts
    image_max : ndarray of float32, shape (N, C)
        Spatial maximum of each unit on each probe image (ranks top-activating images).
    detector_threshold : float
        IoU above which a unit counts as a detector.
    top_images : ndarray of int64, shape (C, k), optional
        Each unit's top-activating probe images (highest spatial maximum first, ties to the lower index).
    top_maps : ndarray of float32, shape (C, k, h, w), optional
        The unit's activation map on each of its top images (what a report thresholds and overlays).
    """

    layer: str
    mode: str
    quantile: float
    level: float
    categories: tuple[str, ...]
    label_names: tuple[str, ...]
    label_category: np.ndarray
    thresholds: np.ndarray
    counts: TallyCounts
    image_max: np.ndarray
    detector_threshold: float = DETECTOR_IOU
    top_images: np.ndarray | None = None
    top_maps: np.ndarray | None = None

    @cached_property
    def iou(self) -> np.ndarray:
        """IoU of every unit with every concept, shape (C, L); NaN for skipped concepts."""
        return iou_matrix(self.counts, self.label_category)

    @cached_property
    def _best(self) -> tuple[np.ndarray, np.ndarray]:
        return best_labels(self.iou, self.label_category, n_categories=len(self.categories), mode=self.mode)

    @property
    def unit_labels(self) -> np.ndarray:
        """Best label number per unit, shape (C,); 0 = "none"."""
        return self._best[0]

    @property
    def unit_iou(self) -> np.ndarray:
        """IoU of each unit's best label, shape (C,); 0 for "none"."""
        return self._best[1]

    @property
    def is_detector(self) -> np.ndarray:
        """Whether each unit's best IoU is above ``detector_threshold``, shape (C,)."""
        return self.unit_iou > self.detector_threshold

    @property
    def dead_units(self) -> np.ndarray:
        """Units that are never above their threshold on any pixel, shape (C,) bool."""
        return self.counts.active == 0

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: ``unit, label, category, iou, is_detector`` (label and category "none" if unlabelled)."""
        labels = self.unit_labels
        names = np.array(self.label_names, dtype=object)[labels]
        categories = np.array(self.categories + ("none",), dtype=object)[self.label_category[labels]]
        return pd.DataFrame({
            "unit": np.arange(len(labels)),
            "label": np.where(labels == 0, "none", names),
            "category": np.where(labels == 0, "none", categories),
            "iou": self.unit_iou,
            "is_detector": self.is_detector,
        })

    def unique_detectors(self) -> int:
        """Number of distinct concepts among detector units."""
        return int(np.unique(self.unit_labels[self.is_detector]).size)

    def detectors_per_concept(self) -> pd.DataFrame:
        """Detector units per concept: ``label, category, units``, grouped by category, most units first."""
        frame = self.to_frame()
        frame = frame[frame.is_detector]
        table = frame.groupby(["category", "label"], as_index=False).size().rename(columns={"size": "units"})
        order = {c: i for i, c in enumerate(self.categories)}
        table["_order"] = table["category"].map(order)
        table = table.sort_values(["_order", "units", "label"], ascending=[True, False, True])
        return table.drop(columns="_order").reset_index(drop=True)

    def __repr__(self) -> str:
        return (f"DissectionResult(layer={self.layer!r}, mode={self.mode!r}, {len(self.thresholds)} units, "
                f"{int(self.is_detector.sum())} detectors covering {self.unique_detectors()} concepts "
                f"with IoU > {self.detector_threshold})")



def _level(quantile: float, mode: str) -> float:
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
    if mode not in ("paper", "lite"):
        raise ValueError(f"mode must be 'paper' or 'lite', got {mode!r}")
    return 1.0 - quantile if mode == "paper" else lite_level(quantile)


def _cache_meta(module: nn.Module, layer: str, probe: ProbeDataset, *, quantile: float,
                categories: Sequence[str], spec: ClassifierSpec | None, mode: str, top_k: int,
                chunk_images: int) -> dict:
    return {"model": hash_state(module), "model_type": f"{type(module).__module__}.{type(module).__qualname__}",
            "layer": layer, "probe": probe.fingerprint, "categories": list(categories),
            "quantile": float(quantile), "level": _level(quantile, mode), "mode": mode, "upsampling": _UPSAMPLING,
            "spec": None if spec is None else dataclasses.asdict(spec), "top_k": int(top_k),
            "chunk_images": int(chunk_images), "version": _CACHE_VERSION}


def dissection_cache_key(model: nn.Module | Classifier, layer: str, probe: ProbeDataset, *, quantile: float = 0.005,
                         categories: Sequence[str] | None = None, spec: ClassifierSpec | None = None,
                         mode: Mode = "paper", top_k: int = 10, chunk_images: int = CHUNK_IMAGES) -> str:
    """The cache key of a dissection: a hash of the model's type and weights (with their dtypes), layer, probe
    content, categories, quantile, input spec (preprocessing included), upsampling, mode, number of top images
    kept and images per cache chunk (16 hex digits)."""
    module, spec = unwrap_classifier(model, spec)
    categories = probe.categories if categories is None else tuple(categories)
    return hash_arguments(**_cache_meta(module, layer, probe, quantile=quantile, categories=categories, spec=spec,
                                        mode=mode, top_k=top_k, chunk_images=chunk_images))


def dissect(model: nn.Module | Classifier, layer: str, probe: ProbeDataset, *, quantile: float = 0.005,
            categories: Sequence[str] | None = None, spec: ClassifierSpec | None = None, batch_size: int = 32,
            device: str | torch.device | None = None, mode: Mode = "paper",
            detector_threshold: float = DETECTOR_IOU, cache_dir: str | Path | None = None, progress: bool = True,
            keep_activations_bytes: int = 2**28, top_k: int = 10, chunk_images: int = CHUNK_IMAGES,
            threads: int | None = None, engine: Engine | None = None) -> DissectionResult:
    """Label the units of one layer with the probe concepts they detect (Network Dissection).

    Two passes over the probe: the first streams every unit's activations into an exact top-``quantile``
    threshold, the second tallies IoU of the thresholded, upsampled maps against every concept (see
    :mod:`linkviz.dissection.tally`).

    Parameters
    ----------
    model : nn.Module or Classifier
        The network (its weights are not changed; submodules are put in eval mode during the run and restored).
    layer : str
        Dotted name of the layer to dissect, as in ``model.named_modules()``.
    probe : ProbeDataset
        Images and concept labels.
    quantile : float
        Fraction of all activation values of a unit above its threshold.
    categories : sequence of str, optional
        Probe categories to use (default all); primary categories are chosen among these.
    spec : ClassifierSpec, optional
        How to turn images into network input (default: a ``Classifier``'s own spec; for a bare module,
        RGB in [0, 1] at the probe's image size).
    batch_size : int
        Images per forward pass.
    device : str or torch.device, optional
        Where the model runs and the tally is computed (default: the model's device). The model is not moved.
    mode : {"paper", "lite"}
        IoU definition (see :mod:`linkviz.dissection.tally`); ``"lite"`` also reads the threshold at
        NetDissect-Lite's level.
    detector_threshold : float
        A unit is a detector if its best IoU is above this.
    cache_dir : path, optional
        Root of an on-disk cache keyed by :func:`dissection_cache_key`; an entry is reused only if all its
        arguments match. Each pass saves every chunk of ``chunk_images`` images as soon as it is done, so an
        interrupted dissection resumes with the chunks that are missing; a corrupt chunk is discarded with a
        warning and recomputed (see :mod:`linkviz.dissection.chunked_passes`).
    progress : bool
        Show progress bars.
    keep_activations_bytes : int
        Keep the first pass's activations in memory for the second while they take at most this many bytes
        (chunk by chunk); run the model again for the other chunks.
    top_k : int
        Top-activating images kept per unit, with the unit's maps on them, for reports (10 as in
        NetDissect-Lite; 0 keeps none). Costs ``C * top_k * h * w`` floats.
    chunk_images : int
        Probe images per chunk of work (and per cache chunk); the result does not depend on it.
    threads : int, optional
        torch intra-op threads for this call (restored afterwards; ``None`` keeps the process's setting). On a
        machine shared with other jobs, or with several dissections in parallel, pass the free cores (often 1):
        an oversubscribed pool made a 200-image run 10x slower with 2 threads than with 1.
    engine : Engine, optional
        Where the chunks are computed: :class:`~linkviz.engines.LocalEngine` (default: this process, with its
        ``n_threads`` when ``threads`` is None) or :class:`~linkviz.engines.DaskEngine` (one task per chunk of
        each pass on a Dask cluster; needs ``cache_dir`` in a folder every worker reaches). The cache's files,
        the resume semantics and the result are the same: thresholds bit for bit, counts exact.

    Returns
    -------
    DissectionResult

    Raises
    ------
    LayerNotFoundError
        If ``layer`` is not a submodule of the model.
    ValueError
        For a bad quantile, mode, batch size or categories, a layer without channel maps, or an engine other
        than a ``LocalEngine`` without ``cache_dir``.
    """
    module, spec = unwrap_classifier(model, spec)
    if spec is not None and spec.resize_to is not None:
        warnings.warn(f"the classifier spec resizes to {spec.resize_to} and centre-crops to {spec.input_size}, so "
                      "activation maps cover only the middle of each probe image and do not line up with its label "
                      "maps; pass a spec with resize_to=None (e.g. efficientnet_lite0_spec(resize_to=None))",
                      stacklevel=2)
    level = _level(quantile, mode)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if top_k < 0:
        raise ValueError(f"top_k must be non-negative, got {top_k}")
    if not len(probe):
        raise ValueError("the probe set has no images")
    resolve_module(module, layer)
    categories = probe.categories if categories is None else tuple(categories)
    label_category = probe.primary_categories(categories)
    device = module_device(module) if device is None else torch.device(device)
    described = {"layer": layer, "mode": mode, "quantile": float(quantile), "level": level, "categories": categories,
                 "probe": probe, "label_category": label_category, "detector_threshold": detector_threshold}
    stores = None
    if cache_dir is not None:
        meta = _cache_meta(module, layer, probe, quantile=quantile, categories=categories, spec=spec, mode=mode,
                           top_k=top_k, chunk_images=chunk_images)
        entry = entry_directory(cache_dir, _CACHE_NAMESPACE, hash_arguments(**meta))
        stores = (ChunkedStore(entry / "thresholds", meta={**meta, "pass": "thresholds"}, keys=THRESHOLD_ARRAYS),
                  ChunkedStore(entry / "tally", meta={**meta, "pass": "tally"}, keys=TALLY_ARRAYS))
    passes = DissectionPasses(module=module, layer=layer, probe=probe, categories=categories,
                              label_category=label_category, spec=spec, batch_size=batch_size, device=device,
                              level=level, mode=mode, top_k=top_k, chunk_images=chunk_images,
                              keep_activations_bytes=keep_activations_bytes, progress=progress, stores=stores)
    if threads is None and isinstance(engine, LocalEngine):
        threads = engine.n_threads
    with eval_mode(module), torch_threads(threads):
        arrays = passes.run(engine)
    return _result(arrays, **described)


def _result(arrays: dict[str, np.ndarray], *, layer: str, mode: Mode, quantile: float, level: float,
            categories: tuple[str, ...], probe: ProbeDataset, label_category: np.ndarray,
            detector_threshold: float) -> DissectionResult:
    counts = TallyCounts(intersection=arrays["intersection"], activation=arrays["activation"], truth=arrays["truth"],
                         active=arrays["active"], mode=mode, n_images=len(probe))
    return DissectionResult(layer=layer, mode=mode, quantile=quantile, level=level, categories=categories,
                            label_names=probe.label_names, label_category=label_category,
                            thresholds=arrays["thresholds"], counts=counts, image_max=arrays["image_max"],
                            detector_threshold=detector_threshold,
                            top_images=arrays["top_images"] if arrays["top_images"].size else None,
                            top_maps=arrays["top_maps"] if arrays["top_images"].size else None)
