"""Unit-tuning sweeps: every unit x seed x step rendered, written to disk chunk by chunk, resumable.

A sweep directory holds a :class:`~linkviz.cache.ChunkedStore`: ``meta.json`` (everything the sweep depends
on, by value or content hash) and one ``chunk_NNNNNN.npz`` per group of units, with arrays

- ``units``: int64 ``[U]``, the units of the group;
- ``values``: float32 ``[U, seeds, steps]``, the value each unit was set to;
- ``baseline_step``: int64 ``[U, seeds]``, the step holding the unperturbed value (-1 if none);
- ``images``: uint8 ``[U, seeds, steps, H, W, 3]``;
- ``w`` (only with ``store_w=True``): float32 ``[U, seeds, steps, w_dim]``.

An interrupted sweep, rerun with the same arguments, computes only the chunks that are missing or corrupt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from linkviz.cache import ChunkedStore
from linkviz.devices import Precision, precision_context, run_device
from linkviz.engines import Engine, LocalEngine
from linkviz.hashing import hash_arguments, hash_state
from linkviz.linking.link import LinearLink, check_activations
from linkviz.models.edits import as_units
from linkviz.models.generator import Generator
from linkviz.tuning.perturbations import UnitStats, ValueMode, tuned_latents, unit_values

__all__ = ["SweepResult", "default_batch_size", "render_latents", "run_sweep"]

_FORMAT_VERSION = 2  # 2: the generator's type and dims are part of the key
_CHUNK_BYTES = 64 * 2**20
_META_FILE = "meta.json"  # written by ChunkedStore


def _chunk_units(units: tuple[int, ...], units_per_chunk: int) -> list[tuple[int, ...]]:
    return [units[i:i + units_per_chunk] for i in range(0, len(units), units_per_chunk)]


def _baseline_steps(values: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Index of the step equal to ``current`` per seed, or -1. values [seeds, steps], current [seeds]."""
    match = np.isclose(values, current[:, None], rtol=1e-6, atol=1e-7)
    return np.where(match.any(axis=1), match.argmax(axis=1), -1).astype(np.int64)


def default_batch_size(device: torch.device | str) -> int:
    """Images per generator pass when none is given: 8 on a CPU (measured on the toy world, 2 cores: batch 8
    renders 1.4-1.9x more images per second than 64, whose activations leave the caches), 64 on an accelerator
    (halved automatically on out-of-memory, see :func:`render_latents`)."""
    return 8 if torch.device(device).type == "cpu" else 64


def _uint8_on_device(images: Tensor) -> np.ndarray:
    """:func:`~linkviz.images.to_uint8` of generator output ``[N, 3, H, W]`` computed where it lives (same
    float32 arithmetic and rounding), so that only uint8 ``[N, H, W, 3]`` crosses to the host."""
    scaled = ((images.float() + 1.0) * 127.5).clamp_(0, 255).round_()
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def render_latents(generator: Generator, w: Tensor, *, batch_size: int, bar: tqdm | None = None,
                   precision: Precision = "float32") -> np.ndarray:
    """uint8 images [M, H, W, 3] of latents ``w [M, w_dim]``, tiled to all ``num_ws``, in batches.

    A batch that runs out of accelerator memory is split in halves and retried (down to one image), and the
    smaller size is kept for the rest; the uint8 conversion happens on the device, so only bytes are copied back.
    ``precision`` other than float32 runs the generator under autocast (:func:`linkviz.devices.precision_context`).
    """
    images = []
    start = 0
    with torch.no_grad():
        while start < w.shape[0]:
            batch = w[start:start + batch_size]
            try:
                with precision_context(w.device, precision):
                    rendered = generator.synthesis(batch[:, None, :].expand(-1, generator.num_ws, -1))
            except torch.OutOfMemoryError:
                if batch_size == 1:
                    raise
                batch_size = max(1, batch_size // 2)
                torch.cuda.empty_cache()
                continue
            images.append(_uint8_on_device(rendered))
            start += batch.shape[0]
            if bar is not None:
                bar.update(batch.shape[0])
    return np.concatenate(images)


def _sweep_chunk(
    link: LinearLink,
    generator: Generator,
    r_base: Tensor,
    group: tuple[int, ...],
    *,
    stats: UnitStats,
    n_steps: int,
    mode: ValueMode,
    batch_size: int,
    store_w: bool,
    bar: tqdm | None = None,
    precision: Precision = "float32",
) -> dict[str, np.ndarray]:
    current = r_base.cpu().numpy()
    values = np.stack([unit_values(stats, unit, current=current[:, unit], n_steps=n_steps, mode=mode)
                       for unit in group])  # [U, seeds, steps]
    w = torch.stack([tuned_latents(link, r_base, unit, values[j]) for j, unit in enumerate(group)])
    images = render_latents(generator, w.reshape(-1, link.w_dim), batch_size=batch_size, bar=bar,
                            precision=precision)
    arrays = {
        "units": np.asarray(group, dtype=np.int64),
        "values": values,
        "baseline_step": np.stack([_baseline_steps(values[j], current[:, unit]) for j, unit in enumerate(group)]),
        "images": images.reshape(*values.shape, *images.shape[1:]),
    }
    if store_w:
        arrays["w"] = w.cpu().numpy().astype(np.float32)
    return arrays


def _sweep_group(link: LinearLink, generator: Generator, r_base: Tensor, groups: list[tuple[int, ...]],
                 index: int, **options) -> dict[str, np.ndarray]:
    """Chunk ``index`` of a sweep: :func:`_sweep_chunk` of ``groups[index]`` (what an engine computes)."""
    return _sweep_chunk(link, generator, r_base, groups[index], **options)


def run_sweep(
    link: LinearLink,
    generator: Generator,
    r_base: Tensor | np.ndarray,
    *,
    stats: UnitStats,
    out_dir: str | os.PathLike[str],
    units: int | Sequence[int] | None = None,
    n_steps: int | None = None,
    mode: ValueMode = "range",
    units_per_chunk: int | None = None,
    batch_size: int | None = None,
    store_w: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    engine: Engine | None = None,
    precision: Precision = "float32",
) -> SweepResult:
    """Tune every unit through its values for every seed and render the results to disk.

    For each unit, the values come from :func:`~linkviz.tuning.unit_values` (per seed, since modes ``"range"``
    and ``"std"`` include the seed's unperturbed value) and the latents from
    :func:`~linkviz.tuning.tuned_latents` (one linked latent per seed, then a rank-1 update per step).

    Parameters
    ----------
    link : LinearLink
        The link ``w = A r + b``.
    generator : Generator
        Renders ``ws [M, num_ws, w_dim]``; each linked w is tiled to all ``num_ws``. Must live on ``device``.
    r_base : Tensor or ndarray, shape [N_seeds, D]
        Unperturbed activations, one row per seed image. From a linked model, take seeds across the classes,
        ``linked.pairs.r[list(linked.example_seeds(n))]``: its first rows all share one class.
    stats : UnitStats
        Statistics of the base set (ranges and standard deviations of the units).
    out_dir : path
        The sweep's directory (created). Rerunning with the same arguments resumes; a directory holding a sweep
        made with other arguments raises :class:`~linkviz.cache.CacheMismatchError`.
    units : int or sequence of int, optional
        Units to sweep (ints or numpy integers); default all ``D``.
    n_steps : int, optional
        Values per unit; default 5 (3 for ``mode="reference"``).
    mode : {"range", "std", "reference"}
        How values are chosen; see :func:`~linkviz.tuning.unit_values`. ``mode="reference"`` reproduces the
        Linking in Style reference (3 steps from min to max, unperturbed image not included).
    units_per_chunk : int, optional
        Units per chunk file; default so that a chunk's images take about 64 MiB.
    batch_size : int, optional
        Images per generator pass; default :func:`default_batch_size` of ``device`` (halved on out-of-memory).
    store_w : bool
        Also store the latents.
    device : torch.device or str, optional
        Where latents are built and the generator runs; default the generator's device (a different one raises).
    progress : bool
        Show a progress bar over images.
    engine : Engine, optional
        Where the chunks are computed: :class:`~linkviz.engines.LocalEngine` (default, this process) or
        :class:`~linkviz.engines.DaskEngine` (one task per chunk on a Dask cluster whose workers see
        ``out_dir``). The directory's contents and the resume semantics are the same either way.
    precision : {"float32", "bfloat16", "float16"}
        The generator's arithmetic. Reduced precision is for GPUs (on the toy world bfloat16 images differ from
        float32 by 0.2 grey levels on average, 99% within 1.5, at most ~10 of 255); it is part of the cache key.

    Returns
    -------
    SweepResult
        Lazy reader of the finished sweep.

    Raises
    ------
    IndexError
        If a unit is out of range.
    ValueError
        For a non-integer unit (3.7 is refused, not truncated), mismatched shapes, NaN in ``r_base`` or bad
        options.
    CacheMismatchError
        If ``out_dir`` holds a sweep computed with other arguments.
    """
    device = run_device(device, generator)
    r_base = check_activations(r_base, link, device, name="r_base")
    if stats.n_units != link.r_dim:
        raise ValueError(f"stats describe D={stats.n_units} units but the link expects {link.r_dim}")
    units = tuple(range(link.r_dim)) if units is None else tuple(stats.check_unit(u) for u in as_units(units))
    if not units or len(set(units)) != len(units):
        raise ValueError(f"units must be non-empty and distinct; got {units}")
    batch_size = default_batch_size(device) if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive; got {batch_size}")
    precision_context(device, precision)  # refuses an unknown precision before anything is written
    # resolve the default and validate mode and n_steps before anything is written
    n_steps = len(unit_values(stats, units[0], current=0.0, n_steps=n_steps, mode=mode))
    n_seeds = r_base.shape[0]
    if units_per_chunk is None:
        unit_bytes = n_seeds * n_steps * 3 * int(generator.img_resolution) ** 2
        units_per_chunk = max(1, _CHUNK_BYTES // max(unit_bytes, 1))
    if units_per_chunk < 1:
        raise ValueError(f"units_per_chunk must be positive; got {units_per_chunk}")
    meta = {
        "format": _FORMAT_VERSION,
        "link": hash_arguments(weight=link.weight, bias=link.bias, latent_norm=link.latent_norm),
        "generator": hash_state(generator),
        "generator_type": f"{type(generator).__module__}.{type(generator).__qualname__}",
        "num_ws": int(generator.num_ws),
        "w_dim": int(generator.w_dim),
        "img_resolution": int(generator.img_resolution),
        "r_base": hash_arguments(r_base=r_base.cpu().numpy()),
        "stats": hash_arguments(min=stats.min, max=stats.max, mean=stats.mean, std=stats.std),
        "units": list(units),
        "n_seeds": n_seeds,
        "n_steps": n_steps,
        "mode": mode,
        "units_per_chunk": int(units_per_chunk),
        "store_w": bool(store_w),
        **({} if precision == "float32" else {"precision": precision}),  # float32 sweeps keep their old keys
    }
    keys = ["units", "values", "baseline_step", "images"] + (["w"] if store_w else [])
    store = ChunkedStore(out_dir, meta=meta, keys=keys)
    groups = _chunk_units(units, units_per_chunk)
    done = store.completed()
    todo = [index for index in range(len(groups)) if index not in done]
    images_per_unit = n_seeds * n_steps
    initial = sum(len(groups[index]) for index in done if index < len(groups)) * images_per_unit
    engine = LocalEngine() if engine is None else engine
    here = isinstance(engine, LocalEngine)  # a bar in this process can follow every batch; else every chunk
    with tqdm(total=len(units) * images_per_unit, initial=initial, unit="img", desc="unit sweep",
              disable=not progress) as bar:
        compute = partial(_sweep_group, link, generator, r_base, groups, stats=stats, n_steps=n_steps, mode=mode,
                          batch_size=batch_size, store_w=store_w, bar=bar if here else None, precision=precision)
        engine.run(compute, store, todo, sizes=[len(groups[index]) * images_per_unit for index in todo],
                   bar=None if here else bar)
    store.mark_complete()
    return SweepResult(out_dir)


class SweepResult:
    """Lazy reader of a finished sweep directory; chunks are read when a unit is asked for.

    Parameters
    ----------
    directory : path
        A directory written by :func:`run_sweep`.

    Raises
    ------
    FileNotFoundError
        If the directory holds no sweep.
    ValueError
        If the sweep is unfinished (rerun :func:`run_sweep` with the same arguments to resume it).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        meta_path = self.directory / _META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no sweep in {self.directory} (missing {_META_FILE})")
        record = json.loads(meta_path.read_text())
        self._store = ChunkedStore(self.directory, meta=record["meta"], keys=record["keys"])
        if not self._store.is_complete:
            raise ValueError(f"the sweep in {self.directory} is unfinished; rerun run_sweep with the same "
                             "arguments to resume it")
        self.meta: dict = self._store.meta
        self.units: tuple[int, ...] = tuple(self.meta["units"])
        self._position = {unit: divmod(i, self.meta["units_per_chunk"]) for i, unit in enumerate(self.units)}
        self._cached: tuple[int, dict[str, np.ndarray]] | None = None

    def __repr__(self) -> str:
        return (f"SweepResult({len(self.units)} units x {self.n_seeds} seeds x {self.n_steps} steps, "
                f"mode={self.mode!r}, directory={str(self.directory)!r})")

    @property
    def n_seeds(self) -> int:
        return int(self.meta["n_seeds"])

    @property
    def n_steps(self) -> int:
        return int(self.meta["n_steps"])

    @property
    def mode(self) -> str:
        return str(self.meta["mode"])

    def _chunk(self, unit: int) -> tuple[dict[str, np.ndarray], int]:
        if unit not in self._position:
            raise KeyError(f"unit {unit} is not in this sweep; swept units: {_summary(self.units)}")
        index, offset = self._position[unit]
        if self._cached is None or self._cached[0] != index:
            self._cached = (index, self._store.load(index))
        return self._cached[1], offset

    def images(self, unit: int) -> np.ndarray:
        """Images of ``unit``, uint8 of shape [seeds, steps, H, W, 3]."""
        chunk, offset = self._chunk(unit)
        return chunk["images"][offset]

    def values(self, unit: int) -> np.ndarray:
        """Values ``unit`` was set to, float32 of shape [seeds, steps]."""
        chunk, offset = self._chunk(unit)
        return chunk["values"][offset]

    def baseline_step(self, unit: int) -> np.ndarray:
        """Step holding the unperturbed value per seed, int of shape [seeds] (-1 where no step does)."""
        chunk, offset = self._chunk(unit)
        return chunk["baseline_step"][offset]

    def latents(self, unit: int) -> np.ndarray:
        """Latents of ``unit``, float32 of shape [seeds, steps, w_dim]; needs ``store_w=True``."""
        if not self.meta["store_w"]:
            raise ValueError("this sweep was run without store_w=True, so it holds no latents")
        chunk, offset = self._chunk(unit)
        return chunk["w"][offset]

    def to_frame(self) -> pd.DataFrame:
        """Tidy table with one row per (unit, seed, step): ``unit, seed, step, value, is_baseline``.

        Returns only the small arrays of each chunk, not the images (every chunk is still verified).

        Raises
        ------
        CorruptChunkError
            If a chunk is damaged; the message names the file (rerun :func:`run_sweep` to recompute it).
        """
        frames = []
        n_chunks = -(-len(self.units) // self.meta["units_per_chunk"])
        for index in range(n_chunks):
            chunk = self._store.load(index, ("units", "values", "baseline_step"))
            units, values, baseline = chunk["units"], chunk["values"], chunk["baseline_step"]
            n_seeds, n_steps = values.shape[1:]
            unit_grid, seed_grid, step_grid = np.meshgrid(units, np.arange(n_seeds), np.arange(n_steps),
                                                          indexing="ij")
            frames.append(pd.DataFrame({
                "unit": unit_grid.ravel(), "seed": seed_grid.ravel(), "step": step_grid.ravel(),
                "value": values.ravel(), "is_baseline": (step_grid == baseline[:, :, None]).ravel(),
            }))
        return pd.concat(frames, ignore_index=True)


def _summary(units: tuple[int, ...]) -> str:
    return str(list(units)) if len(units) <= 10 else f"{list(units[:5])} ... {list(units[-2:])} ({len(units)})"
