"""Sample (w, r) training pairs for the linking network.

For each requested class, latents ``z`` are drawn from fresh per-sample seeds,
mapped to ``w`` with the class as condition, synthesised and classified; the
classifier's penultimate activations ``r`` and its prediction are recorded.

The reference implementation kept sampling until it had N *accepted* images
per class (images the classifier assigns to the conditioning class) and re-used
seeds when re-sampling rejected pairs, which put duplicates in the training
data. Here a fixed budget of distinct seeds is sampled per class; every sample
is returned with an ``accepted`` flag and the acceptance rate is reported. Fit
the link on :meth:`PairSet.accepted_only`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from linkviz.cache import CacheMismatchError, ChunkedStore, entry_directory
from linkviz.devices import placement, run_device
from linkviz.hashing import hash_arguments, hash_state
from linkviz.models import Classifier, Generator

__all__ = ["PairSet", "latents_from_seeds", "pair_seeds", "sample_pairs"]

_CACHE_NAMESPACE = "pairs"
_CACHE_FORMAT = 2  # 2: the key holds the classifier spec (layer, preprocessing)
_CHUNK_KEYS = ("seeds", "labels", "w", "r", "predicted")
_SEED_SPACE = 2**32  # torch.Generator.manual_seed uses the low 32 bits only
_CLASS_STRIDE = 2**20  # seeds reserved per class: samples_per_class <= 2**20, classes < 4096


@dataclass(frozen=True)
class PairSet:
    """Sampled latents and classifier activations, one row per generated image.

    Attributes
    ----------
    w : np.ndarray, shape (N, w_dim)
        Mapped latent (the first of the ``num_ws`` identical rows).
    r : np.ndarray, shape (N, D)
        Classifier penultimate activations of the generated image.
    labels : np.ndarray of int64, shape (N,)
        Conditioning class given to the generator.
    predicted : np.ndarray of int64, shape (N,)
        Classifier's argmax prediction.
    accepted : np.ndarray of bool, shape (N,)
        ``predicted == labels``.
    seeds : np.ndarray of int64, shape (N,)
        Per-sample seed of ``z`` (see :func:`latents_from_seeds`); all distinct.
    """

    w: np.ndarray
    r: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    accepted: np.ndarray
    seeds: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.seeds)
        for name in ("w", "r", "labels", "predicted", "accepted"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, seeds has {n}")

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def acceptance_rate(self) -> float:
        """Fraction of samples classified as their conditioning class (nan if empty)."""
        return float(self.accepted.mean()) if len(self) else math.nan

    def acceptance_by_class(self) -> dict[int, float]:
        """Acceptance rate per conditioning class, keyed by class index."""
        return {
            int(label): float(self.accepted[self.labels == label].mean())
            for label in np.unique(self.labels)
        }

    def accepted_only(self) -> PairSet:
        """Return the subset of samples whose prediction matches their class."""
        keep = self.accepted
        return PairSet(
            w=self.w[keep],
            r=self.r[keep],
            labels=self.labels[keep],
            predicted=self.predicted[keep],
            accepted=self.accepted[keep],
            seeds=self.seeds[keep],
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy table with one row per sample: seed, label, predicted, accepted."""
        return pd.DataFrame({"seed": self.seeds, "label": self.labels, "predicted": self.predicted,
                             "accepted": self.accepted})


def pair_seeds(seed: int, *, classes: Sequence[int], samples_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Derive one distinct 32-bit seed per sample, in class-major order.

    Sample ``i`` of class ``c`` gets ``(base + c * 2**20 + i) mod 2**32`` where
    ``base`` is drawn from ``numpy.random.SeedSequence(seed)``. Seeds are
    therefore distinct within a run, reproducible, and a sample's seed depends
    neither on the batch size nor on the other classes or ``samples_per_class``.
    Seeds stay below ``2**32`` because torch's CPU generator only uses the low
    32 bits of its seed (larger seeds would give repeated ``z``). Runs with
    different ``seed`` rarely share seeds but are not guaranteed disjoint:
    exclude the training seeds explicitly when drawing held-out data.

    Parameters
    ----------
    seed : int
        Non-negative run seed.
    classes : sequence of int
        Distinct class indices in ``[0, 4096)``.
    samples_per_class : int
        Samples per class, in ``[1, 2**20]``.

    Returns
    -------
    labels : np.ndarray of int64, shape (len(classes) * samples_per_class,)
    seeds : np.ndarray of int64, shape (len(classes) * samples_per_class,)
        Values in ``[0, 2**32)``.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not 1 <= samples_per_class <= _CLASS_STRIDE:
        raise ValueError(f"samples_per_class must be in [1, 2**20], got {samples_per_class}")
    raw = np.asarray(classes)
    if raw.size and not (np.issubdtype(raw.dtype, np.integer) or (raw.dtype == object and all(
            isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in raw.ravel()))):
        raise ValueError(f"classes must be integer class ids (0.5 is refused, not truncated); got {list(classes)}")
    class_array = raw.astype(np.int64)
    if class_array.ndim != 1 or class_array.size == 0:
        raise ValueError("classes must be a non-empty sequence of ints")
    if len(np.unique(class_array)) != class_array.size:
        raise ValueError(f"classes must be distinct (repeats would reuse seeds), got {list(classes)}")
    if class_array.min() < 0 or class_array.max() >= _SEED_SPACE // _CLASS_STRIDE:
        raise ValueError(f"classes must lie in [0, 4096), got {list(classes)}")
    base = int(np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint32)[0])
    labels = np.repeat(class_array, samples_per_class)
    within = np.tile(np.arange(samples_per_class, dtype=np.int64), class_array.size)
    seeds = (base + labels * _CLASS_STRIDE + within) % _SEED_SPACE
    return labels, seeds


def latents_from_seeds(
    seeds: np.ndarray, *, z_dim: int, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Draw one standard normal ``z`` per seed.

    Parameters
    ----------
    seeds : np.ndarray of int, shape (N,)
    z_dim : int
    device : str or torch.device

    Returns
    -------
    torch.Tensor, shape (N, z_dim), float32
        Row ``k`` is ``torch.randn(z_dim)`` from a CPU generator seeded with
        ``seeds[k]``, so it does not depend on the other seeds or the device.
    """
    rows = [
        torch.randn(z_dim, generator=torch.Generator().manual_seed(int(seed_value)))
        for seed_value in seeds
    ]
    return torch.stack(rows).to(device) if rows else torch.empty(0, z_dim, device=device)


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"




def _check_classes(generator: Generator, classes: Sequence[int]) -> None:
    if generator.c_dim == 0:
        if list(classes) != [0]:
            raise ValueError(f"unconditional generator (c_dim=0) needs classes=[0], got {list(classes)}")
        return
    out_of_range = [c for c in classes if not 0 <= c < generator.c_dim]
    if out_of_range:
        raise ValueError(f"classes {out_of_range} outside [0, {generator.c_dim}) of the generator")


def _run_batch(generator: Generator, classifier: Classifier, z: torch.Tensor, labels: np.ndarray, *,
               truncation_psi: float, batch_index: int) -> dict[str, np.ndarray]:
    """Map, synthesise and classify one batch; return numpy arrays."""
    generator_placement, classifier_placement = placement(generator), placement(classifier.module)
    if generator_placement is not None:  # e.g. float64 weights get float64 latents
        z = z.to(dtype=generator_placement[1])
    c = None
    if generator.c_dim:
        index = torch.as_tensor(labels, device=z.device)
        c = torch.nn.functional.one_hot(index, generator.c_dim).to(z.dtype)
    ws = generator.mapping(z, c, truncation_psi=truncation_psi)
    images = generator.synthesis(ws)
    if classifier_placement is not None:  # the classifier's device, and its dtype but at least float32
        device, dtype = classifier_placement
        images = images.to(device=device, dtype=torch.promote_types(dtype, torch.float32))
    logits, r = classifier.forward_generated(images)
    if r.ndim != 2 or r.shape[0] != len(labels):
        raise ValueError(f"classifier returned r of shape {tuple(r.shape)}, expected ({len(labels)}, D)")
    n_bad = int((~torch.isfinite(r)).sum())
    if n_bad:
        raise ValueError(f"{n_bad} of {r.numel()} activations r are non-finite in batch {batch_index}")
    w = ws[:, 0] if ws.ndim == 3 else ws
    return {
        "w": w.float().cpu().numpy(),
        "r": r.float().cpu().numpy(),
        "predicted": logits.argmax(dim=1).cpu().numpy().astype(np.int64),
    }


def _check_cached_rows(chunk: dict[str, np.ndarray], seeds: np.ndarray, labels: np.ndarray, batch_index: int) -> None:
    if not (np.array_equal(chunk["seeds"], seeds) and np.array_equal(chunk["labels"], labels)):
        raise CacheMismatchError(f"cached batch {batch_index} holds other seeds or labels than expected")


def _spec_record(classifier: Classifier) -> dict[str, Any] | None:
    """The classifier's spec (input size, value range, mean/std, resize, penultimate layer, ...), for the key."""
    spec = getattr(classifier, "spec", None)
    return None if spec is None else dataclasses.asdict(spec)


def _open_store(cache_dir: str | os.PathLike[str], generator: Generator, classifier: Classifier,
                arguments: dict[str, Any]) -> ChunkedStore:
    """The pair cache entry, keyed by every input that changes a pair (weight hashes include dtypes)."""
    dims = ("z_dim", "w_dim", "c_dim", "num_ws", "img_resolution")
    meta = {
        "kind": "pairs", "format": _CACHE_FORMAT, **arguments,
        "generator_type": _type_name(generator), "generator_state": hash_state(generator),
        "generator_dims": {name: int(getattr(generator, name)) for name in dims},
        "classifier_type": _type_name(classifier), "classifier_state": hash_state(classifier.module),
        "classifier_spec": _spec_record(classifier),
    }
    directory = entry_directory(cache_dir, _CACHE_NAMESPACE, hash_arguments(**meta))
    return ChunkedStore(directory, meta=meta, keys=_CHUNK_KEYS)


def sample_pairs(
    generator: Generator,
    classifier: Classifier,
    *,
    classes: Sequence[int],
    samples_per_class: int,
    truncation_psi: float = 0.7,
    seed: int,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> PairSet:
    """Sample a fixed budget of (w, r) pairs per class, accepted or not.

    Each sample has its own seed (:func:`pair_seeds`); its ``z`` is
    :func:`latents_from_seeds`, ``w = generator.mapping(z, one_hot(class),
    truncation_psi)``, the image is ``generator.synthesis(w)`` and
    ``classifier.forward_generated(image)`` gives the logits and ``r``. All
    samples are returned; ``accepted`` marks those predicted as their class.
    Unlike the reference, rejected samples are not re-drawn (which reused
    seeds): take :meth:`PairSet.accepted_only` and report the acceptance rate.

    Parameters
    ----------
    generator : Generator
        StyleGAN-style generator with ``z_dim, w_dim, c_dim, num_ws,
        img_resolution``, ``mapping(z, c, truncation_psi=)`` returning
        ``(N, num_ws, w_dim)`` and ``synthesis(ws)`` returning ``(N, 3, R, R)``.
        Must already be on ``device`` and in eval mode.
    classifier : Classifier
        Has ``.module`` (nn.Module) and ``forward_generated(images)`` returning
        ``(logits (N, K), r (N, D))``; class indices must match the generator's.
    classes : sequence of int
        Distinct conditioning classes in ``[0, generator.c_dim)``; ``[0]`` for
        an unconditional generator (``c_dim == 0``, which gets ``c=None``).
    samples_per_class : int
        Samples drawn per class (accepted or not), at least 1.
    truncation_psi : float
        Truncation applied by the mapping network.
    seed : int
        Non-negative run seed; results do not depend on ``batch_size``.
    batch_size : int
        Samples per forward pass; one cache chunk per batch.
    device : str or torch.device, optional
        Device the latents are created on; default, and required to be, the
        generator's. Latents take the generator's dtype (float64 weights get
        float64 latents); images are moved to the classifier's device and
        dtype (at least float32) before it sees them.
    cache_dir : str or path-like, optional
        Cache root. The entry is keyed by all arguments, the classifier's spec
        (layer, preprocessing) and hashes of the generator's and classifier's
        weights (which include their dtypes); finished batches are reused and
        an interrupted run resumes from the last verified batch.
    progress : bool
        Show a tqdm progress bar with the running acceptance rate.

    Returns
    -------
    PairSet
        ``len(classes) * samples_per_class`` samples in class-major order.

    Raises
    ------
    ValueError
        For classes outside the generator's range, ``samples_per_class < 1``,
        ``batch_size < 1``, non-finite activations ``r``, or a ``device``
        other than the generator's.
    """
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be at least 1, got {samples_per_class}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    _check_classes(generator, classes)
    device = run_device(device, generator)
    labels, seeds = pair_seeds(seed, classes=classes, samples_per_class=samples_per_class)
    store = None
    if cache_dir is not None:
        arguments = {
            "classes": [int(c) for c in classes],
            "samples_per_class": int(samples_per_class),
            "truncation_psi": float(truncation_psi),
            "seed": int(seed),
            "batch_size": int(batch_size),
        }
        store = _open_store(cache_dir, generator, classifier, arguments)
    done = store.completed() if store is not None else set()

    n_batches = math.ceil(len(seeds) / batch_size)
    chunks: list[dict[str, np.ndarray]] = []
    n_accepted = 0
    bar = tqdm(total=n_batches, desc="sampling pairs", disable=not progress)
    with torch.inference_mode(), bar:
        for batch_index in range(n_batches):
            rows = slice(batch_index * batch_size, (batch_index + 1) * batch_size)
            if batch_index in done:
                chunk = store.load(batch_index)
                _check_cached_rows(chunk, seeds[rows], labels[rows], batch_index)
            else:
                z = latents_from_seeds(seeds[rows], z_dim=generator.z_dim, device=device)
                chunk = _run_batch(
                    generator, classifier, z, labels[rows],
                    truncation_psi=truncation_psi, batch_index=batch_index,
                )
                chunk.update(seeds=seeds[rows], labels=labels[rows])
                if store is not None:
                    store.save(batch_index, **chunk)
            chunks.append(chunk)
            n_accepted += int((chunk["predicted"] == chunk["labels"]).sum())
            bar.update(1)
            n_done = rows.start + len(chunk["seeds"])
            bar.set_postfix(acceptance=f"{n_accepted / n_done:.1%}")
    if store is not None:
        store.mark_complete()

    predicted = np.concatenate([chunk["predicted"] for chunk in chunks]).astype(np.int64)
    return PairSet(
        w=np.concatenate([chunk["w"] for chunk in chunks]),
        r=np.concatenate([chunk["r"] for chunk in chunks]),
        labels=labels,
        predicted=predicted,
        accepted=predicted == labels,
        seeds=seeds,
    )
