"""The two passes of a dissection, chunk by chunk, so that a cache keeps every finished chunk.

The probe is cut into chunks of consecutive images. For each chunk the first pass keeps every image's spatial
maximum per unit, the chunk's top-activating images with their maps, and the chunk's largest activation values
per unit, only those at or above the running bound (the ``k``-th largest value of the chunks before it), which
is all that the exact quantile threshold can need. The second pass keeps each chunk's IoU counts, which add up.
Merging the chunks gives what one pass over all images gives: the same thresholds (bit for bit), the same top
images and the same counts (integer-valued float64 sums).

With :class:`~linkviz.cache.ChunkedStore` s for the two passes, each chunk is saved as soon as it is done; a
rerun loads the chunks that verify (a corrupt one is discarded with a warning and recomputed) and computes only
the rest, so a killed dissection resumes where it stopped.

On an engine other than this process (:meth:`DissectionPasses.run` with a
:class:`~linkviz.engines.DaskEngine`), every chunk of either pass is one task that needs nothing from the other
chunks: a first-pass chunk keeps its own ``k`` largest values per unit (no running bound), the client merges the
chunks in index order with ``torch.topk`` (the same multiset of the ``k`` largest values whatever order the
chunks finished in), and the second pass's chunks add up as before. The files and the merged result are those
of the in-process run; a first-pass chunk may hold more values (up to ``min(k, values in the chunk)`` per unit).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..cache import ChunkedStore
from ..engines import Engine, LocalEngine
from ..models.activations import iter_layer_activations
from ..models.classifier import ClassifierSpec
from .probe_dataset import ProbeDataset
from .quantile import all_finite, merge_top_values
from .tally import Mode, Tally
from .top_images import TopImages

__all__ = ["TALLY_ARRAYS", "THRESHOLD_ARRAYS", "DissectionPasses", "chunk_ranges"]

#: Arrays of a first-pass chunk and of a second-pass chunk.
THRESHOLD_ARRAYS = ("map_size", "image_max", "top_values", "top_images", "top_maps")
TALLY_ARRAYS = ("thresholds", "intersection", "activation", "truth", "active")

Batches = Iterator[tuple[np.ndarray, Tensor]]


def chunk_ranges(n_images: int, chunk_images: int) -> list[range]:
    """Consecutive image ranges of at most ``chunk_images`` images covering ``range(n_images)``."""
    if chunk_images < 1:
        raise ValueError(f"chunk_images must be positive, got {chunk_images}")
    return [range(start, min(n_images, start + chunk_images)) for start in range(0, n_images, chunk_images)]


def _top_count(n_values: int, level: float) -> tuple[int, float]:
    """Values per unit the quantile at ``level`` of ``n_values`` needs (the largest ``k``), and its gamma."""
    position = (n_values - 1) * level
    below = math.floor(position)
    return n_values - below, position - below


@dataclass
class DissectionPasses:
    """Both passes of :func:`~linkviz.dissection.dissect` over one layer, chunked and optionally stored.

    Attributes mirror the arguments of :func:`~linkviz.dissection.dissect`; ``stores`` holds the first and
    second pass's stores (or ``None`` for no cache).
    """

    module: nn.Module
    layer: str
    probe: ProbeDataset
    categories: tuple[str, ...]
    label_category: np.ndarray
    spec: ClassifierSpec | None
    batch_size: int
    device: torch.device
    level: float
    mode: Mode
    top_k: int
    chunk_images: int
    keep_activations_bytes: int
    progress: bool
    stores: tuple[ChunkedStore, ChunkedStore] | None = None

    def _maps(self, images: range) -> Batches:
        """The layer's maps on the images of one chunk, with probe-wide image indices."""
        chunk = self.probe.images[images.start:images.stop]
        with closing(iter_layer_activations(self.module, self.layer, chunk, spec=self.spec,
                                            batch_size=self.batch_size, device=self.device)) as outputs:
            for indices, output in outputs:
                yield indices + images.start, output

    def run(self, engine: Engine | None = None) -> dict[str, np.ndarray]:
        """Run (or resume) both passes.

        Parameters
        ----------
        engine : Engine, optional
            ``None`` or a :class:`~linkviz.engines.LocalEngine`: this process, chunk after chunk (the first pass
            prunes each chunk with the running bound, activations are kept for the second pass). Any other engine
            (a :class:`~linkviz.engines.DaskEngine`) computes every chunk of each pass as an independent task
            that saves itself into the stores, which must then be given.

        Returns
        -------
        dict of str to ndarray
            ``thresholds`` (C,), ``intersection`` (C, L), ``activation`` (C, K), ``truth`` (L,), ``active`` (C,),
            ``image_max`` (N, C), ``top_images`` (C, k) and ``top_maps`` (C, k, h, w) (``(0, 0)`` and
            ``(0, 0, 0, 0)`` when ``top_k`` is 0).
        """
        ranges = chunk_ranges(len(self.probe), self.chunk_images)
        if engine is not None and not isinstance(engine, LocalEngine):
            return self._run_on(engine, ranges)
        chunks, kept = self._threshold_pass(ranges)
        thresholds = self._merged_thresholds(chunks)
        return self._finished(chunks, thresholds, self._tally_pass(ranges, thresholds, kept))

    def _finished(self, chunks: list[dict[str, np.ndarray]], thresholds: np.ndarray,
                  counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The result arrays from both passes' chunks; marks the stores complete."""
        image_max = np.concatenate([chunk["image_max"] for chunk in chunks])
        if self.top_k:
            top_images, top_maps = _merged_top_images(chunks, image_max, self.top_k)
        else:
            top_images, top_maps = np.zeros((0, 0), np.int64), np.zeros((0, 0, 0, 0), np.float32)
        for store in self.stores or ():
            store.mark_complete()
        return {"thresholds": thresholds, **counts, "image_max": image_max, "top_images": top_images,
                "top_maps": top_maps}

    def _run_on(self, engine: Engine, ranges: list[range]) -> dict[str, np.ndarray]:
        """Both passes as one task per chunk on ``engine``; the client merges the saved chunks."""
        if self.stores is None:
            raise ValueError(f"dissect on {type(engine).__name__} needs cache_dir: its workers save every chunk "
                             "there (a folder every worker can reach); pass cache_dir=...")
        thresholds_store, tally_store = self.stores
        worker = replace(self, stores=None, progress=False)
        sizes = [len(images) for images in ranges]
        todo = sorted(set(range(len(ranges))) - thresholds_store.completed())
        with tqdm(total=len(self.probe), initial=len(self.probe) - sum(sizes[i] for i in todo),
                  desc=f"{self.layer}: thresholds", unit="img", disable=not self.progress) as bar:
            engine.run(partial(_threshold_task, worker), thresholds_store, todo, sizes=[sizes[i] for i in todo],
                       bar=bar)
        chunks = [thresholds_store.load(index) for index in range(len(ranges))]
        thresholds = self._merged_thresholds(chunks)
        done = tally_store.completed()
        for index in sorted(done):
            if not np.array_equal(tally_store.load(index, ["thresholds"])["thresholds"], thresholds):
                warnings.warn(f"recomputing the IoU tally of {tally_store.chunk_path(index)}: it was made with "
                              "other thresholds", stacklevel=4)
                tally_store.chunk_path(index).unlink(missing_ok=True)  # a task finding no chunk computes it
                done.discard(index)
        todo = sorted(set(range(len(ranges))) - done)
        with tqdm(total=len(self.probe), initial=len(self.probe) - sum(sizes[i] for i in todo),
                  desc=f"{self.layer}: IoU tally", unit="img", disable=not self.progress) as bar:
            engine.run(partial(_tally_task, worker, thresholds), tally_store, todo, sizes=[sizes[i] for i in todo],
                       bar=bar)
        totals: dict[str, np.ndarray] = {}
        for index in range(len(ranges)):
            chunk = tally_store.load(index)
            for name in TALLY_ARRAYS[1:]:
                totals[name] = totals[name] + chunk[name] if name in totals else chunk[name].copy()
        return self._finished(chunks, thresholds, totals)

    def _threshold_pass(self, ranges: list[range]) -> tuple[list[dict[str, np.ndarray]], dict[int, list]]:
        store = None if self.stores is None else self.stores[0]
        done = store.completed() if store is not None else set()
        chunks, kept, kept_bytes, merged = [], {}, 0, None
        with tqdm(total=len(self.probe), initial=sum(len(ranges[i]) for i in done if i < len(ranges)),
                  desc=f"{self.layer}: thresholds", unit="img", disable=not self.progress) as bar:
            for index, images in enumerate(ranges):
                if index in done:
                    chunk = store.load(index)
                else:
                    batches = [] if kept_bytes < self.keep_activations_bytes else None
                    chunk = self._threshold_chunk(images, merged, batches, bar)
                    if store is not None:
                        store.save(index, **chunk)
                    if batches is not None:
                        kept_bytes += sum(output.numel() * 4 for _, output in batches)
                        if kept_bytes <= self.keep_activations_bytes:
                            kept[index] = batches
                merged = _merge_top(merged, torch.from_numpy(chunk["top_values"]), self._k(chunk))
                chunks.append(chunk)
        return chunks, kept

    def _k(self, chunk: dict[str, np.ndarray]) -> int:
        height, width = (int(v) for v in chunk["map_size"])
        return _top_count(len(self.probe) * height * width, self.level)[0]

    def _threshold_chunk(self, images: range, merged: Tensor | None, batches: list | None,
                         bar: tqdm | None) -> dict[str, np.ndarray]:
        """First-pass arrays of one chunk; appends its maps to ``batches`` unless that is None."""
        top = TopImages(self.top_k) if self.top_k else None
        values, image_max, map_size, k, bound = None, [], None, 0, None
        with closing(self._maps(images)) as outputs:
            for indices, output in outputs:
                if map_size is None:
                    map_size = np.array(output.shape[2:], np.int64)
                    k = _top_count(len(self.probe) * int(output.shape[2] * output.shape[3]), self.level)[0]
                    bound = None if merged is None or merged.shape[1] < k else _kth_largest(merged, k_needed=k)
                per_image = output.detach().to(torch.float32).flatten(2).cpu()  # [n, C, h * w]
                if not all_finite(per_image):
                    raise ValueError(f"layer {self.layer!r} gives NaN or infinite activations on probe images "
                                     f"{indices[0]}..{indices[-1]}")
                # values below the bound (other chunks) or below the chunk's own k-th largest never reach the top k
                values = merge_top_values(values, per_image, k, bound, seen=int(indices[0]))
                image_max.append(output.flatten(2).amax(2).cpu())
                if top is not None:
                    top.update(output)
                if batches is not None:
                    batches.append((indices, output.cpu()))
                if bar is not None:
                    bar.update(len(indices))
        n_units = values.shape[0]
        top_images, top_maps = top.result() if top is not None else (
            np.zeros((n_units, 0), np.int64), np.zeros((n_units, 0, *map_size), np.float32))
        return {"map_size": map_size, "image_max": torch.cat(image_max).numpy(),
                "top_values": _finite_columns(values).numpy(), "top_images": top_images + images.start,
                "top_maps": top_maps}

    def _merged_thresholds(self, chunks: list[dict[str, np.ndarray]]) -> np.ndarray:
        """The exact quantile of each unit over all images, as :class:`~linkviz.dissection.TopQuantile` gives it."""
        height, width = (int(v) for v in chunks[0]["map_size"])
        k, gamma = _top_count(len(self.probe) * height * width, self.level)
        top = None
        for chunk in chunks:  # in index order, k values per unit at a time: the k largest of all chunks
            top = _merge_top(top, torch.from_numpy(chunk["top_values"]), k)
        smallest = torch.topk(top, min(2, k), dim=1, largest=False, sorted=True).values
        lower = smallest[:, 0].double().numpy()
        upper = smallest[:, 1].double().numpy() if k > 1 else lower
        diff = upper - lower  # linear interpolation the way np.quantile computes it
        return np.where(gamma >= 0.5, upper - diff * (1 - gamma), lower + diff * gamma)

    def _tally_pass(self, ranges: list[range], thresholds: np.ndarray, kept: dict[int, list]
                    ) -> dict[str, np.ndarray]:
        store = None if self.stores is None else self.stores[1]
        done = store.completed() if store is not None else set()
        totals: dict[str, np.ndarray] = {}
        with tqdm(total=len(self.probe), desc=f"{self.layer}: IoU tally", unit="img",
                  disable=not self.progress) as bar:
            for index, images in enumerate(ranges):
                chunk = store.load(index) if index in done else None
                if chunk is not None and not np.array_equal(chunk["thresholds"], thresholds):
                    warnings.warn(f"recomputing the IoU tally of {store.chunk_path(index)}: it was made with other "
                                  "thresholds", stacklevel=4)
                    chunk = None
                if chunk is None:
                    chunk = self._tally_chunk(images, thresholds, kept.get(index))
                    if store is not None:
                        store.save(index, **chunk)
                for name in TALLY_ARRAYS[1:]:
                    totals[name] = totals[name] + chunk[name] if name in totals else chunk[name].copy()
                bar.update(len(images))
        return totals

    def _tally_chunk(self, images: range, thresholds: np.ndarray, batches: list | None) -> dict[str, np.ndarray]:
        tally = Tally(thresholds, self.label_category, n_categories=len(self.categories),
                      segmentation_shape=self.probe.segmentation_shape, mode=self.mode, device=self.device)
        source = (batch for batch in batches) if batches is not None else self._maps(images)
        with closing(source) as outputs:
            for indices, output in outputs:
                pixel, image = self.probe.label_batch(indices, categories=self.categories)
                tally.update(output, pixel_labels=pixel, image_labels=image)
        counts = tally.counts()
        return {"thresholds": thresholds, "intersection": counts.intersection, "activation": counts.activation,
                "truth": counts.truth, "active": counts.active}


def _threshold_task(passes: DissectionPasses, index: int) -> dict[str, np.ndarray]:
    """First-pass chunk ``index`` on its own (no bound from other chunks): what one engine task computes."""
    return passes._threshold_chunk(chunk_ranges(len(passes.probe), passes.chunk_images)[index], None, None, None)


def _tally_task(passes: DissectionPasses, thresholds: np.ndarray, index: int) -> dict[str, np.ndarray]:
    """Second-pass chunk ``index`` at ``thresholds``: what one engine task computes."""
    return passes._tally_chunk(chunk_ranges(len(passes.probe), passes.chunk_images)[index], thresholds, None)


def _merge_top(buffer: Tensor | None, values: Tensor, k: int) -> Tensor:
    """The ``k`` largest of each row of ``buffer`` and ``values`` together (fewer if there are fewer)."""
    merged = values if buffer is None else torch.cat([buffer, values], dim=1)
    if merged.shape[1] > k:
        merged = torch.topk(merged, k, dim=1, sorted=False).values
    return merged


def _kth_largest(values: Tensor, *, k_needed: int) -> Tensor:
    """The ``k_needed``-th largest value of each row (``-inf`` padding counts as a value)."""
    return torch.topk(values, k_needed, dim=1, sorted=True).values[:, -1]


def _finite_columns(values: Tensor) -> Tensor:
    """Each row's values largest first, trimmed to the most finite values of any row (``-inf`` pads)."""
    values = torch.sort(values, dim=1, descending=True).values
    n_finite = int(torch.isfinite(values).sum(1).max()) if values.numel() else 0
    return values[:, :n_finite].contiguous()


def _merged_top_images(chunks: list[dict[str, np.ndarray]], image_max: np.ndarray, top_k: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's top images over all chunks: highest maximum first, ties to the lower image index."""
    indices = np.concatenate([chunk["top_images"] for chunk in chunks], axis=1)  # (C, kept), chunk order
    maps = np.concatenate([chunk["top_maps"] for chunk in chunks], axis=1)
    values = np.take_along_axis(image_max.T, indices, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")[:, :top_k]
    return np.take_along_axis(indices, order, axis=1), np.take_along_axis(maps, order[:, :, None, None], axis=1)
