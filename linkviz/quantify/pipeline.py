"""The population pipeline in one call: a finished sweep and a segmenter in, one :class:`ChangeTable` out.

Every unit's images (all seeds x steps) are segmented in batches of several units per segmenter call, measured
with :func:`~linkviz.quantify.unit_changes` and concatenated. The table is cached on disk, chunk by chunk of
units, in a :class:`~linkviz.cache.ChunkedStore` keyed by the sweep's ``meta`` (which holds the hashes of the
link, generator and base activations), the segmenter's identity string and every option: rerunning is a read,
and an interrupted run recomputes only the chunks that are missing or fail their checksum.

A chunk holds the table's rows for its units, with ``label`` and ``metric`` stored as indices into the labels
and :data:`~linkviz.quantify.METRICS`:

- ``unit``, ``seed``, ``step``, ``label``, ``metric``: int64 ``[R]``;
- ``value``, ``baseline``, ``change``: float64 ``[R]``;
- ``visible``: bool ``[R]``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from linkviz.cache import ChunkedStore, entry_directory
from linkviz.engines import Engine, LocalEngine
from linkviz.hashing import hash_arguments
from linkviz.quantify.changes import CHANGE_COLUMNS, ChangeTable, sequence_change_columns, unit_changes
from linkviz.quantify.part_metrics import METRICS
from linkviz.tuning.sweep import SweepResult

__all__ = ["Segmenter", "sweep_changes"]

#: A segmenter: uint8 RGB images ``[M, H, W, 3]`` -> integer label maps ``[M, H, W]``.
Segmenter = Callable[[np.ndarray], np.ndarray]

_FORMAT_VERSION = 3  # 2: metric names and unit_changes defaults in the key; 3: near-disk parts have no angle
_NAMESPACE = "changes"
_KEYS = ("unit", "seed", "step", "label", "metric", "value", "baseline", "change", "visible")


def _segment_batch(segment: Segmenter, images: np.ndarray, n_labels: int) -> np.ndarray:
    """Call the segmenter once on ``images [M, H, W, 3]``; check and return its masks ``[M, H, W]``."""
    masks = np.asarray(segment(images))
    if masks.shape != images.shape[:3]:
        raise ValueError(f"the segmenter returned masks of shape {masks.shape} for images of shape "
                         f"{images.shape}; expected {images.shape[:3]}")
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"the segmenter must return integer label maps; got {masks.dtype}")
    if masks.size and (masks.min() < 0 or masks.max() >= n_labels):
        raise ValueError(f"the segmenter returned label ids {masks.min()}..{masks.max()}, outside the "
                         f"{n_labels} labels (0..{n_labels - 1})")
    return masks


def _indices(names: pd.Series, index: dict[str, int]) -> np.ndarray:
    """Position of each name in ``index`` as int64 (one lookup per distinct name)."""
    return names.map(index).to_numpy(np.int64)


def _encode(table: ChangeTable, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """The table's columns as plain arrays (labels and metrics as indices)."""
    frame = table.frame
    label_index = {name: i for i, name in enumerate(labels)}
    metric_index = {name: i for i, name in enumerate(METRICS)}
    return {
        "unit": frame["unit"].to_numpy(np.int64), "seed": frame["seed"].to_numpy(np.int64),
        "step": frame["step"].to_numpy(np.int64),
        "label": _indices(frame["label"], label_index), "metric": _indices(frame["metric"].astype(str), metric_index),
        "value": frame["value"].to_numpy(np.float64), "baseline": frame["baseline"].to_numpy(np.float64),
        "change": frame["change"].to_numpy(np.float64), "visible": frame["visible"].to_numpy(bool),
    }


def _decode(arrays: dict[str, np.ndarray], labels: Sequence[str]) -> ChangeTable:
    frame = pd.DataFrame({
        "unit": arrays["unit"], "seed": arrays["seed"], "step": arrays["step"],
        "label": np.asarray(labels, dtype=object)[arrays["label"]],
        "metric": np.asarray(METRICS, dtype=object)[arrays["metric"]],
        "value": arrays["value"], "baseline": arrays["baseline"], "change": arrays["change"],
        "visible": arrays["visible"],
    })
    return ChangeTable(frame[list(CHANGE_COLUMNS)])


def _option_defaults() -> dict[str, Any]:
    """The keyword defaults of :func:`unit_changes` (options not passed still change the table if they change)."""
    return {name: parameter.default for name, parameter in inspect.signature(unit_changes).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is not inspect.Parameter.empty
            and name != "seeds"}


def _reference_steps(sweep: SweepResult, unit: int, reference_step: int | None) -> np.ndarray:
    if reference_step is not None:
        return np.full(sweep.n_seeds, int(reference_step), dtype=np.int64)
    steps = np.asarray(sweep.baseline_step(unit))
    if (steps < 0).any():
        raise ValueError(f"unit {unit} has no unperturbed step for seeds {np.flatnonzero(steps < 0).tolist()} "
                         f"(a sweep in mode {sweep.mode!r}); pass reference_step=0 to compare with the first step")
    return steps


def _chunk_changes(sweep: SweepResult, units: Sequence[int], segment: Segmenter, labels: Sequence[str], *,
                   reference_step: int | None, change_options: dict[str, Any]) -> ChangeTable:
    """Segment the images of ``units`` in one call, then measure all seeds of each unit at once (vectorised)."""
    images = np.stack([sweep.images(unit) for unit in units])  # [U, N, S, H, W, 3]
    if images.dtype != np.uint8 or images.ndim != 6 or images.shape[-1] != 3:
        raise ValueError(f"sweep images must be uint8 [N, S, H, W, 3] per unit; got {images.dtype} "
                         f"{images.shape[1:]}")
    masks = _segment_batch(segment, images.reshape(-1, *images.shape[3:]), len(labels)).reshape(images.shape[:5])
    n_seeds = images.shape[1]
    options = {**_option_defaults(), **change_options}  # unit_changes' defaults, as in the cache key
    columns = [sequence_change_columns(images[j], masks[j], labels, units=np.full(n_seeds, unit),
                                       seeds=np.arange(n_seeds), **options,
                                       reference_steps=_reference_steps(sweep, unit, reference_step))
               for j, unit in enumerate(units)]  # one unit at a time bounds the memory of the float maps
    frame = pd.DataFrame({name: np.concatenate([part[name] for part in columns]) for name in CHANGE_COLUMNS})
    return ChangeTable(frame)


def _encoded_chunk(sweep: SweepResult, groups: Sequence[Sequence[int]], segment: Segmenter,
                   labels: Sequence[str], index: int, **options: Any) -> dict[str, np.ndarray]:
    """Chunk ``index`` of a change table, as stored (what an engine computes)."""
    return _encode(_chunk_changes(sweep, groups[index], segment, labels, **options), labels)


def sweep_changes(
    sweep: SweepResult,
    segment: Segmenter,
    labels: Sequence[str],
    *,
    segmenter_id: str,
    cache_dir: str | os.PathLike[str] | None = None,
    units: Sequence[int] | None = None,
    units_per_chunk: int = 8,
    reference_step: int | None = None,
    progress: bool = True,
    engine: Engine | None = None,
    **change_options: Any,
) -> ChangeTable:
    """Segment and measure every unit of a finished sweep: one :class:`ChangeTable`, cached and resumable.

    Parameters
    ----------
    sweep : SweepResult
        A finished sweep (:func:`~linkviz.tuning.run_sweep`): ``images(unit)`` of shape (N, S, H, W, 3).
    segment : callable
        ``segment(images)`` with uint8 ``images`` of shape (M, H, W, 3) returns integer label maps (M, H, W) whose
        value ``i`` means ``labels[i]``. It is called once per chunk, on all seeds x steps of
        ``units_per_chunk`` units (e.g. ``lambda x: segment_images(model, x)``).
    labels : sequence of str
        Label names, indexed by mask value.
    segmenter_id : str
        Identity of the segmenter (e.g. ``"render-unet-" + hash_state(model)``), part of the cache key: a
        different segmenter must have a different id, or it would read another segmenter's results.
    cache_dir : path, optional
        Cache root; the table lives in ``<cache_dir>/changes/<key>/``. Default: the sweep's own directory.
    units : sequence of int, optional
        Units to measure, in this order; default every unit of the sweep.
    units_per_chunk : int
        Units segmented per segmenter call and stored per cache chunk.
    reference_step : int, optional
        The step every change is taken against; default each seed's unperturbed step
        (``sweep.baseline_step(unit)``). A sweep with no unperturbed step (mode ``"reference"``) needs it.
    progress : bool
        Show a progress bar over units.
    engine : Engine, optional
        Where the chunks are computed (:class:`~linkviz.engines.LocalEngine` by default, or a
        :class:`~linkviz.engines.DaskEngine`; ``segment`` must then be picklable and the cache folder reachable by
        the workers). Same files and resume semantics either way.
    **change_options
        Passed to :func:`~linkviz.quantify.unit_changes` (``visibility``, ``area_floor``,
        ``angle_min_eccentricity``, ``exclude``, ``connectivity``, ...); part of the cache key.

    Returns
    -------
    ChangeTable
        Rows of every unit x seed x step x label x metric, units in the order of ``units``.

    Raises
    ------
    KeyError
        If a unit is not in the sweep.
    ValueError
        For bad options, segmenter output of the wrong shape, type or label range, or a sweep without an
        unperturbed step and no ``reference_step``.
    """
    units = tuple(sweep.units) if units is None else tuple(int(unit) for unit in units)
    missing = sorted(set(units) - set(sweep.units))
    if missing:
        raise KeyError(f"units {missing} are not in the sweep")
    if not units or len(set(units)) != len(units):
        raise ValueError(f"units must be non-empty and distinct; got {list(units)}")
    if units_per_chunk < 1:
        raise ValueError(f"units_per_chunk must be positive; got {units_per_chunk}")
    if not isinstance(segmenter_id, str) or not segmenter_id:
        raise ValueError(f"segmenter_id must be a non-empty string; got {segmenter_id!r}")
    labels = tuple(str(name) for name in labels)
    if len(set(labels)) != len(labels) or len(labels) < 1:
        raise ValueError(f"labels must be distinct names; got {list(labels)}")
    if reference_step is not None and not 0 <= reference_step < sweep.n_steps:
        raise ValueError(f"reference_step must be in [0, {sweep.n_steps}); got {reference_step}")

    meta = {
        "format": _FORMAT_VERSION, "sweep": sweep.meta, "segmenter": segmenter_id, "labels": list(labels),
        "units": list(units), "units_per_chunk": int(units_per_chunk), "reference_step": reference_step,
        "metrics": list(METRICS),  # chunks store metrics as indices into this tuple
        "options": hash_arguments(**{name: sorted(value) if isinstance(value, (set, frozenset)) else value
                                     for name, value in {**_option_defaults(), **change_options}.items()}),
    }
    root = Path(cache_dir) if cache_dir is not None else sweep.directory
    store = ChunkedStore(entry_directory(root, _NAMESPACE, hash_arguments(**meta)), meta=meta, keys=_KEYS)
    groups = [units[i:i + units_per_chunk] for i in range(0, len(units), units_per_chunk)]
    done = store.completed()
    todo = [index for index in range(len(groups)) if index not in done]
    with tqdm(total=len(units), initial=sum(len(groups[i]) for i in done if i < len(groups)), unit="unit",
              desc="part changes", disable=not progress) as bar:
        compute = partial(_encoded_chunk, sweep, groups, segment, labels, reference_step=reference_step,
                          change_options=change_options)
        (LocalEngine() if engine is None else engine).run(compute, store, todo,
                                                          sizes=[len(groups[index]) for index in todo], bar=bar)
    store.mark_complete()
    return _decode(store.load_all(_KEYS), labels)
