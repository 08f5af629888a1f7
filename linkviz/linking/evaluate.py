"""Held-out evaluation of a link by cycle consistency: w -> G -> classifier -> r -> link -> w~ -> G.

The reference reported only the training MSE of the link. Here, for held-out pairs:

- latent error: MSE and cosine between ``w`` and ``w~ = link(r(G(w)))``;
- class agreement: the classifier's prediction on the cycled image ``I~ = G(w~)`` against its prediction on the
  original ``I = G(w)`` (and against the generator's conditioning label);
- perceptual distance ``1 - cos(r(I), r(I~))`` with a fixed feature extractor = the classifier's penultimate
  layer (the paper used MoCo-v2 features, which linkviz does not ship);
- pixel L1, ``mean |I - I~|`` on the generator's ``[-1, 1]`` scale;
- two baselines for the class agreement, so a reader sees whether the link beats chance: always answering the
  test set's majority class (the agreement a link that ignores r could reach at best by rendering one class),
  and the same link fed the r of another test image (rows of r permuted; the agreement the link gets from the
  class frequencies alone).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from linkviz.linking.link import LinearLink
from linkviz.linking.mlp import MLPLink
from linkviz.models import Classifier, Generator
from linkviz.pairs import PairSet

__all__ = ["LinkEvaluation", "evaluate_link"]

_METRICS = ("w_mse", "w_cosine", "class_agreement", "label_agreement", "perceptual_distance", "pixel_l1",
            "majority_agreement", "shuffled_agreement")


@dataclass(frozen=True)
class LinkEvaluation:
    """Per-example cycle-consistency metrics of a link on held-out pairs.

    Attributes
    ----------
    w_mse : ndarray of float, shape (N,)
        ``mean((w - w~) ** 2)`` over latent dimensions.
    w_cosine : ndarray of float, shape (N,)
        Cosine similarity of ``w`` and ``w~``.
    class_agreement : ndarray of bool, shape (N,)
        Classifier predicts the same class for ``I~`` as for ``I``.
    label_agreement : ndarray of bool, shape (N,)
        Classifier predicts the conditioning label for ``I~``.
    perceptual_distance : ndarray of float, shape (N,)
        ``1 - cos(r(I), r(I~))``; the fixed feature extractor is the classifier's penultimate layer.
    pixel_l1 : ndarray of float, shape (N,)
        ``mean |I - I~|`` over pixels and channels, images in ``[-1, 1]``.
    labels, predicted_original, predicted_cycled : ndarray of int64, shape (N,)
        Conditioning label, prediction on ``I`` and prediction on ``I~``.
    seeds : ndarray of int64, shape (N,)
        The pairs' seeds.
    w_linked : ndarray of float32, shape (N, w_dim)
        ``w~`` as predicted by the link (before any truncation).
    majority_agreement : ndarray of bool, shape (N,)
        Baseline: the prediction on ``I`` is the test set's majority class :attr:`majority_class` (its mean is
        the agreement of always answering that class).
    shuffled_agreement : ndarray of bool, shape (N,)
        Baseline: the classifier predicts for ``G(link(r_j))``, ``j`` another test example (a random permutation
        without fixed points), the class it predicts for ``I``.
    majority_class : int
        The class the classifier predicts most often on the test images (lowest index on ties).
    conditional : bool
        Whether the generator is class-conditional. An unconditional generator's pairs carry no label (they are
        all 0), so ``label_agreement`` means nothing: the summaries and the figure leave it out.
    """

    w_mse: np.ndarray
    w_cosine: np.ndarray
    class_agreement: np.ndarray
    label_agreement: np.ndarray
    perceptual_distance: np.ndarray
    pixel_l1: np.ndarray
    labels: np.ndarray
    predicted_original: np.ndarray
    predicted_cycled: np.ndarray
    seeds: np.ndarray
    w_linked: np.ndarray
    majority_agreement: np.ndarray
    shuffled_agreement: np.ndarray
    majority_class: int
    conditional: bool = True

    def __len__(self) -> int:
        return len(self.labels)

    def to_frame(self) -> pd.DataFrame:
        """Tidy summary: one row per metric with ``metric, mean, std, n`` (std with ``ddof=1``; NaN if n < 2).

        The rows ``majority_agreement`` and ``shuffled_agreement`` are the baselines of ``class_agreement``.
        """
        rows = []
        for metric in self._metrics():
            values = getattr(self, metric).astype(np.float64)
            std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
            rows.append({"metric": metric, "mean": float(values.mean()), "std": std, "n": len(values)})
        return pd.DataFrame(rows)

    def per_example_frame(self) -> pd.DataFrame:
        """One row per example: seed, labels, predictions and every metric (no label agreement when the generator
        is unconditional)."""
        left_out = {"w_linked", "majority_class", "conditional"} | ({"label_agreement"} if not self.conditional
                                                                     else set())
        return pd.DataFrame({f.name: getattr(self, f.name) for f in fields(self) if f.name not in left_out})

    def _metrics(self) -> tuple[str, ...]:
        return _METRICS if self.conditional else tuple(m for m in _METRICS if m != "label_agreement")


def _tile(w: Tensor, num_ws: int) -> Tensor:
    return w[:, None].expand(-1, num_ws, -1)


def _truncate(w: Tensor, labels: Tensor, generator: Generator, psi: float) -> Tensor:
    w_avg = generator.w_avg.to(w.device, w.dtype)
    centers = w_avg[labels] if generator.c_dim else w_avg[:1].expand_as(w)
    return centers + psi * (w - centers)


def _check_inputs(link: LinearLink | MLPLink, generator: Generator, test_pairs: PairSet, batch_size: int) -> None:
    if len(test_pairs) == 0:
        raise ValueError("test_pairs is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if test_pairs.w.ndim != 2 or test_pairs.w.shape[1] != generator.w_dim:
        raise ValueError(f"test_pairs.w has shape {test_pairs.w.shape}, expected (N, {generator.w_dim})")
    if link.w_dim != generator.w_dim:
        raise ValueError(f"the link predicts w of {link.w_dim} dims but the generator's w_dim is {generator.w_dim}")


def _cycle_batch(link: LinearLink | MLPLink, generator: Generator, classifier: Classifier, w: Tensor, labels: Tensor,
                 truncation_psi: float | None) -> dict[str, Tensor]:
    images = generator.synthesis(_tile(w, generator.num_ws))
    logits, r = classifier.forward_generated(images)
    w_linked = link.to_w(r.float()).to(w.device)
    w_cycle = w_linked if truncation_psi is None else _truncate(w_linked, labels, generator, truncation_psi)
    images_cycled = generator.synthesis(_tile(w_cycle, generator.num_ws))
    logits_cycled, r_cycled = classifier.forward_generated(images_cycled)
    predicted = logits.argmax(dim=1).to(w.device)
    predicted_cycled = logits_cycled.argmax(dim=1).to(w.device)
    return {
        "w_mse": ((w - w_linked) ** 2).mean(dim=1),
        "w_cosine": F.cosine_similarity(w, w_linked, dim=1),
        "class_agreement": predicted_cycled == predicted,
        "label_agreement": predicted_cycled == labels,
        "perceptual_distance": 1 - F.cosine_similarity(r.float(), r_cycled.float(), dim=1).to(w.device),
        "pixel_l1": (images.float() - images_cycled.float()).abs().flatten(1).mean(dim=1),
        "predicted_original": predicted,
        "predicted_cycled": predicted_cycled,
        "w_linked": w_linked,
        "r": r.float().to(w.device),
    }


def _derangement(n: int, seed: int) -> np.ndarray:
    """A random permutation of ``range(n)`` without fixed points (n >= 2): a random cycle through all rows."""
    order = np.random.default_rng(seed).permutation(n)
    permutation = np.empty(n, dtype=np.int64)
    permutation[order] = np.roll(order, -1)
    return permutation


def _shuffled_predictions(link: LinearLink | MLPLink, generator: Generator, classifier: Classifier, r: np.ndarray,
                          *, batch_size: int, device: str | torch.device) -> np.ndarray:
    """Predictions on ``G(link(r))`` for rows ``r [M, D]``, in batches; int64 of shape (M,)."""
    predictions = []
    for start in range(0, len(r), batch_size):
        r_batch = torch.as_tensor(r[start:start + batch_size], dtype=torch.float32)
        w = link.to_w(r_batch.to(device)).to(device)
        logits = classifier.forward_generated(generator.synthesis(_tile(w, generator.num_ws)))[0]
        predictions.append(logits.argmax(dim=1).cpu().numpy())
    return np.concatenate(predictions).astype(np.int64)


def evaluate_link(
    link: LinearLink | MLPLink,
    generator: Generator,
    classifier: Classifier,
    test_pairs: PairSet,
    *,
    truncation_psi: float | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
    seed: int = 0,
) -> LinkEvaluation:
    """Measure how well ``link`` inverts the classifier on held-out pairs, by cycling through the generator.

    For each pair the image ``I = G(w)`` is regenerated (``w`` tiled to ``num_ws``), classified to get
    ``r(I)``, linked to ``w~ = link(r(I))`` and synthesised again to ``I~ = G(w~)``, which is classified too.
    The perceptual distance uses a fixed feature extractor = the classifier's penultimate layer:
    ``1 - cos(r(I), r(I~))``. Two baselines of the class agreement come with it: the majority class of the test
    images, and the link fed the r of another test image (one more generator pass per pair).

    Parameters
    ----------
    link : LinearLink or MLPLink
        Anything with ``to_w(r [N, D]) -> w [N, w_dim]`` and a ``w_dim``.
    generator : Generator
        ``synthesis(ws [N, num_ws, w_dim]) -> images [N, 3, R, R]``, with ``num_ws``, ``w_dim``, ``c_dim`` and
        (only for ``truncation_psi``) ``w_avg [max(c_dim, 1), w_dim]``; on ``device``, in eval mode.
    classifier : Classifier
        ``forward_generated(images) -> (logits [N, K], r [N, D])``.
    test_pairs : PairSet
        Held-out pairs (not used to fit the link); only ``w``, ``labels`` and ``seeds`` are read.
    truncation_psi : float, optional
        If given, ``w~`` is pulled towards the generator's class average before synthesis,
        ``w_avg[label] + psi (w~ - w_avg[label])``. ``None`` synthesises ``w~`` as linked, like the reference.
        The latent metrics always use the untruncated ``w~``.
    batch_size : int
        Pairs per forward pass.
    device : str or torch.device
        Device of the generator; latents are created there.
    progress : bool
        Show a tqdm progress bar over batches.
    seed : int
        Seed of the permutation of r for the shuffled-r baseline.

    Returns
    -------
    LinkEvaluation
        Per-example metrics; ``.to_frame()`` gives the tidy summary.

    Raises
    ------
    ValueError
        For empty ``test_pairs``, ``batch_size < 1`` or mismatched latent sizes.
    """
    _check_inputs(link, generator, test_pairs, batch_size)
    chunks: dict[str, list[np.ndarray]] = {}
    starts = range(0, len(test_pairs), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc="evaluating link", disable=not progress):
            rows = slice(start, start + batch_size)
            w = torch.as_tensor(test_pairs.w[rows], dtype=torch.float32, device=device)
            labels = torch.as_tensor(test_pairs.labels[rows], dtype=torch.int64, device=device)
            batch = _cycle_batch(link, generator, classifier, w, labels, truncation_psi)
            for name, values in batch.items():
                chunks.setdefault(name, []).append(values.cpu().numpy())
    results = {name: np.concatenate(parts) for name, parts in chunks.items()}
    predicted = results["predicted_original"].astype(np.int64)
    majority_class = int(np.bincount(predicted).argmax())
    shuffled = results["predicted_cycled"]  # a single pair has no other r to borrow: the link itself
    if len(predicted) > 1:
        with torch.no_grad():
            shuffled = _shuffled_predictions(link, generator, classifier, results["r"][_derangement(len(predicted), seed)],
                                             batch_size=batch_size, device=device)
    del results["r"]
    return LinkEvaluation(
        majority_agreement=predicted == majority_class,
        shuffled_agreement=shuffled == predicted,
        majority_class=majority_class,
        conditional=bool(generator.c_dim),
        labels=np.asarray(test_pairs.labels, dtype=np.int64),
        seeds=np.asarray(test_pairs.seeds, dtype=np.int64),
        predicted_original=results.pop("predicted_original").astype(np.int64),
        predicted_cycled=results.pop("predicted_cycled").astype(np.int64),
        **results,
    )
