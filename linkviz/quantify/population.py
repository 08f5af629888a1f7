"""Population analysis of unit tuning (the paper's Fig. 5): label vectors, label sparsity, tSNE, clustering,
and a finder for units selective for a concept.

A unit's **label vector** holds its mean change over seeds of every (label x metric) at one tuning step (by
default its last step, the strongest perturbation). Metrics have different units, so before distances are taken
each metric is divided by its root-mean-square change over all units and labels (``scaling="metric"``, our
choice: it makes metrics commensurate while keeping which labels a unit changes); ``"column"`` z-scores every
(label x metric) column instead, ``"none"`` leaves the values as they are.

Label sparsity uses **Hoyer's index** (Hoyer 2004, "Non-negative matrix factorization with sparseness
constraints"): ``(sqrt(n) - |x|_1 / |x|_2) / (sqrt(n) - 1)`` on the absolute changes of one metric over the ``n``
labels, 1 when a unit changes a single label and 0 when it changes all labels equally. The Treves-Rolls measure,
normalised as by Vinje & Gallant (2000), ``(1 - (mean|x|)^2 / mean(x^2)) / (1 - 1/n)``, has the same end points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.manifold import TSNE

from linkviz.quantify.changes import ChangeTable, aggregate_changes

__all__ = [
    "LabelClustering",
    "LabelVectors",
    "UnitEmbedding",
    "cluster_label_vectors",
    "find_selective_units",
    "hoyer_sparsity",
    "label_sparsity",
    "label_vectors",
    "strongest_label",
    "treves_rolls_sparsity",
    "tsne_embedding",
]

Scaling = Literal["metric", "column", "none"]


def _frame(table: ChangeTable | pd.DataFrame) -> pd.DataFrame:
    return table.frame if isinstance(table, ChangeTable) else table


def _at_step(frame: pd.DataFrame, step: int | None) -> pd.DataFrame:
    """Rows at ``step``, or at each unit's last step when ``step`` is None."""
    if step is None:
        return frame[frame["step"] == frame.groupby("unit")["step"].transform("max")]
    selected = frame[frame["step"] == step]
    if selected.empty:
        raise ValueError(f"no rows at step {step}; steps in the table: {sorted(frame['step'].unique())}")
    return selected


@dataclass(frozen=True)
class LabelVectors:
    """Per-unit mean changes of every (label x metric).

    Attributes
    ----------
    units : ndarray of int, shape (U,)
    labels : tuple of str, length L
    metrics : tuple of str, length M
    values : ndarray of float, shape (U, L, M)
        Mean change over seeds; undefined changes (NaN for every seed) hold the ``fill_value`` they were built
        with.
    """

    units: np.ndarray
    labels: tuple[str, ...]
    metrics: tuple[str, ...]
    values: np.ndarray

    @property
    def column_names(self) -> list[str]:
        """``"label/metric"`` for each column of :meth:`matrix`."""
        return [f"{label}/{metric}" for label in self.labels for metric in self.metrics]

    def matrix(self, *, scaling: Scaling = "none") -> np.ndarray:
        """The vectors as a matrix of shape (U, L * M), label-major, optionally scaled (see the module)."""
        values = self.values
        if scaling == "metric":
            scale = np.sqrt((values**2).mean(axis=(0, 1)))
            values = values / np.where(scale > 0, scale, 1.0)
        flat = values.reshape(len(self.units), -1)
        if scaling == "column":
            std = flat.std(axis=0)
            flat = (flat - flat.mean(axis=0)) / np.where(std > 0, std, 1.0)
        elif scaling not in ("metric", "none"):
            raise ValueError(f"scaling must be 'metric', 'column' or 'none'; got {scaling!r}")
        return flat

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``unit, label, metric, value``."""
        unit, label, metric = np.meshgrid(self.units, np.array(self.labels, dtype=object),
                                          np.array(self.metrics, dtype=object), indexing="ij")
        return pd.DataFrame({"unit": unit.ravel(), "label": label.ravel(), "metric": metric.ravel(),
                             "value": self.values.ravel()})


def label_vectors(table: ChangeTable | pd.DataFrame, *, step: int | None = None,
                  fill_value: float = 0.0) -> LabelVectors:
    """Each unit's label vector: mean change over seeds of every (label x metric) at one step.

    Parameters
    ----------
    table : ChangeTable or DataFrame
        With columns ``unit, step, label, metric, change``.
    step : int, optional
        Tuning step; default each unit's last step.
    fill_value : float
        Value for changes undefined in every seed (e.g. the angle of a part that never shows).

    Returns
    -------
    LabelVectors
    """
    frame = _at_step(_frame(table), step)
    means = frame.groupby(["unit", "label", "metric"], observed=True)["change"].mean()
    units = np.sort(frame["unit"].unique())
    labels = tuple(pd.unique(frame["label"]))
    metrics = tuple(pd.unique(frame["metric"].astype(str)))
    full = pd.MultiIndex.from_product([units, labels, metrics], names=["unit", "label", "metric"])
    values = means.reindex(full).to_numpy(dtype=np.float64).reshape(len(units), len(labels), len(metrics))
    return LabelVectors(units=units, labels=labels, metrics=metrics,
                        values=np.where(np.isnan(values), fill_value, values))


def hoyer_sparsity(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Hoyer's sparsity of ``|x|`` along ``axis``: 1 for a one-hot vector, 0 for a uniform one.

    Parameters
    ----------
    x : ndarray
        At least 2 entries along ``axis``.
    axis : int

    Returns
    -------
    ndarray
        ``(sqrt(n) - L1 / L2) / (sqrt(n) - 1)``; NaN for an all-zero vector (no change, no sparsity).
    """
    x = np.abs(np.asarray(x, dtype=np.float64))
    n = x.shape[axis]
    if n < 2:
        raise ValueError(f"sparsity needs at least 2 entries along axis {axis}; got {n}")
    l1, l2 = x.sum(axis=axis), np.sqrt((x**2).sum(axis=axis))
    ratio = np.divide(l1, l2, out=np.full_like(l1, np.nan), where=l2 > 0)
    return (np.sqrt(n) - ratio) / (np.sqrt(n) - 1.0)


def treves_rolls_sparsity(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Treves-Rolls sparseness of ``|x|`` along ``axis``, normalised to 1 for one-hot and 0 for uniform vectors.

    Parameters
    ----------
    x : ndarray
        At least 2 entries along ``axis``.
    axis : int

    Returns
    -------
    ndarray
        ``(1 - a) / (1 - 1/n)`` with ``a = mean(|x|)^2 / mean(x^2)`` (Vinje & Gallant 2000); NaN for an all-zero
        vector.
    """
    x = np.abs(np.asarray(x, dtype=np.float64))
    n = x.shape[axis]
    if n < 2:
        raise ValueError(f"sparsity needs at least 2 entries along axis {axis}; got {n}")
    mean_sq = (x**2).mean(axis=axis)
    activity = np.divide(x.mean(axis=axis) ** 2, mean_sq, out=np.full_like(mean_sq, np.nan), where=mean_sq > 0)
    return (1.0 - activity) / (1.0 - 1.0 / n)


_SPARSITY = {"hoyer": hoyer_sparsity, "treves_rolls": treves_rolls_sparsity}


def label_sparsity(vectors: LabelVectors, *,
                   index: Literal["hoyer", "treves_rolls"] = "hoyer") -> pd.DataFrame:
    """How few labels each unit changes, per metric.

    Parameters
    ----------
    vectors : LabelVectors
    index : {"hoyer", "treves_rolls"}

    Returns
    -------
    DataFrame
        ``unit, metric, sparsity, index``: one row per unit and metric; NaN where a unit changes no label.
    """
    if index not in _SPARSITY:
        raise ValueError(f"index must be one of {sorted(_SPARSITY)}; got {index!r}")
    sparsity = _SPARSITY[index](vectors.values, axis=1)  # [U, M]
    unit, metric = np.meshgrid(vectors.units, np.array(vectors.metrics, dtype=object), indexing="ij")
    return pd.DataFrame({"unit": unit.ravel(), "metric": metric.ravel(), "sparsity": sparsity.ravel(),
                         "index": index})


def strongest_label(vectors: LabelVectors, *, scaling: Literal["metric", "none"] = "metric") -> np.ndarray:
    """The label each unit changes most: largest norm over metrics of its (scaled) changes.

    Parameters
    ----------
    vectors : LabelVectors
    scaling : {"metric", "none"}
        See the module.

    Returns
    -------
    ndarray of str, shape (U,)
    """
    values = vectors.matrix(scaling=scaling).reshape(vectors.values.shape)
    return np.asarray(vectors.labels, dtype=object)[np.linalg.norm(values, axis=2).argmax(axis=1)]


@dataclass(frozen=True)
class UnitEmbedding:
    """A 2-d tSNE embedding of label vectors.

    Attributes
    ----------
    units : ndarray of int, shape (U,)
    coordinates : ndarray of float, shape (U, 2)
    strongest_label : ndarray of str, shape (U,)
    seed : int
    """

    units: np.ndarray
    coordinates: np.ndarray
    strongest_label: np.ndarray
    seed: int

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``unit, x, y, strongest_label``."""
        return pd.DataFrame({"unit": self.units, "x": self.coordinates[:, 0], "y": self.coordinates[:, 1],
                             "strongest_label": self.strongest_label})


def tsne_embedding(vectors: LabelVectors, *, seed: int, perplexity: float = 30.0, max_iter: int = 1000,
                   scaling: Scaling = "metric") -> UnitEmbedding:
    """tSNE of the units' label vectors, each unit tagged with its strongest label.

    Parameters
    ----------
    vectors : LabelVectors
        At least 2 units.
    seed : int
        ``random_state`` of :class:`sklearn.manifold.TSNE` (PCA initialisation); equal seeds give equal output.
    perplexity : float
        Lowered to ``(U - 1) / 3`` (at least 1) for small populations.
    max_iter : int
        Optimisation iterations (at least 250).
    scaling : {"metric", "column", "none"}

    Returns
    -------
    UnitEmbedding
    """
    n_units = len(vectors.units)
    if n_units < 2:
        raise ValueError(f"tSNE needs at least 2 units; got {n_units}")
    perplexity = min(float(perplexity), max((n_units - 1) / 3.0, 1.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", max_iter=max_iter,
                random_state=seed)
    coordinates = tsne.fit_transform(vectors.matrix(scaling=scaling))
    return UnitEmbedding(units=vectors.units, coordinates=coordinates,
                         strongest_label=strongest_label(vectors, scaling="metric" if scaling != "none" else "none"),
                         seed=seed)


@dataclass(frozen=True)
class LabelClustering:
    """Hierarchical clustering of label vectors.

    Attributes
    ----------
    units : ndarray of int, shape (U,)
    linkage : ndarray of float, shape (U - 1, 4)
        :func:`scipy.cluster.hierarchy.linkage` output.
    clusters : ndarray of int, shape (U,)
        Flat cluster ids ``1..n_clusters``.
    method : str
    scaling : str
    """

    units: np.ndarray
    linkage: np.ndarray
    clusters: np.ndarray
    method: str
    scaling: str

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``unit, cluster``."""
        return pd.DataFrame({"unit": self.units, "cluster": self.clusters})


def cluster_label_vectors(vectors: LabelVectors, *, n_clusters: int, method: str = "ward",
                          scaling: Scaling = "metric") -> LabelClustering:
    """Agglomerative clustering of the units' label vectors (Euclidean distance), cut into ``n_clusters``.

    Parameters
    ----------
    vectors : LabelVectors
        At least 2 units.
    n_clusters : int
    method : str
        Linkage method of :func:`scipy.cluster.hierarchy.linkage` ("ward", "average", ...).
    scaling : {"metric", "column", "none"}

    Returns
    -------
    LabelClustering
    """
    if len(vectors.units) < 2:
        raise ValueError(f"clustering needs at least 2 units; got {len(vectors.units)}")
    tree = linkage(vectors.matrix(scaling=scaling), method=method, metric="euclidean")
    clusters = fcluster(tree, t=n_clusters, criterion="maxclust")
    return LabelClustering(units=vectors.units, linkage=tree, clusters=clusters, method=method, scaling=scaling)


def parse_sign(sign: int | str) -> int:
    """+1 or -1 from a direction given as +1/-1, '+'/'-' or 'increase'/'decrease'."""
    if sign in (1, "+", "increase"):
        return 1
    if sign in (-1, "-", "decrease"):
        return -1
    raise ValueError(f"sign must be +1/-1, '+'/'-' or 'increase'/'decrease'; got {sign!r}")


def find_selective_units(table: ChangeTable | pd.DataFrame, *, label: str, metric: str, sign: int | str,
                         top: int | None = 10, step: int | None = None, method: Literal["t", "bootstrap"] = "t",
                         confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                         significant_only: bool = True, min_selectivity: float = 0.0,
                         rank_by: Literal["effect", "cohens_d", "ci_low"] = "effect") -> pd.DataFrame:
    """Units whose tuning changes ``metric`` of ``label`` in the direction ``sign``, strongest first.

    Parameters
    ----------
    table : ChangeTable or DataFrame
        With columns ``unit, seed, step, label, metric, change``.
    label, metric : str
        The concept, e.g. ``label="ear", metric="area"``.
    sign : {+1, -1, "+", "-", "increase", "decrease"}
    top : int, optional
        Number of units returned; None for all that pass the filters.
    step : int, optional
        Tuning step compared with the unperturbed one; default each unit's last step.
    method, confidence, n_resamples, seed
        Confidence interval over seeds, as in :func:`~linkviz.quantify.aggregate_changes`.
    significant_only : bool
        Keep only units whose interval excludes 0 on the requested side.
    min_selectivity : float
        Keep only units with at least this selectivity (see Returns).
    rank_by : {"effect", "cohens_d", "ci_low"}
        Ranking key, descending.

    Returns
    -------
    DataFrame
        ``rank, unit, step, label, metric, effect, ci_low, ci_high, n, cohens_d, selectivity``. ``effect`` is the
        mean change over seeds times ``sign`` (so larger is stronger in the requested direction) and
        ``ci_low, ci_high`` its interval; ``cohens_d = effect / std`` over seeds; ``selectivity`` is the share of
        the unit's absolute mean change of ``metric``, summed over labels, that falls on ``label`` (1 = only
        this label changes).
    """
    direction = parse_sign(sign)
    frame = _frame(table)
    for column, value in (("label", label), ("metric", metric)):
        if value not in set(frame[column].astype(str)):
            raise ValueError(f"{column} {value!r} is not in the table; available: {sorted(set(frame[column]))}")
    rows = _at_step(frame[frame["metric"].astype(str) == metric], step)
    stats = aggregate_changes(rows, method=method, confidence=confidence, n_resamples=n_resamples, seed=seed,
                              by=("unit", "step", "label"))
    total = stats.assign(magnitude=stats["mean"].abs().fillna(0.0)).groupby("unit")["magnitude"].sum()
    target = stats[stats["label"].astype(str) == label].reset_index(drop=True)
    low, high = (target["ci_low"], target["ci_high"]) if direction > 0 else (-target["ci_high"], -target["ci_low"])
    effect = direction * target["mean"]
    magnitude = total.reindex(target["unit"]).to_numpy()
    result = pd.DataFrame({
        "unit": target["unit"], "step": target["step"], "label": label, "metric": metric, "effect": effect,
        "ci_low": low, "ci_high": high, "n": target["n"],
        "cohens_d": effect / target["std"].where(target["std"] > 0),
        "selectivity": np.divide(target["mean"].abs().to_numpy(), magnitude,
                                 out=np.zeros(len(target)), where=magnitude > 0),
    })
    keep = (result["effect"] > 0) & (result["selectivity"] >= min_selectivity)
    if significant_only:
        keep &= result["ci_low"] > 0
    result = result[keep].sort_values(rank_by, ascending=False, kind="stable", na_position="last")
    result = (result.head(top) if top is not None else result).reset_index(drop=True)
    result.insert(0, "rank", np.arange(1, len(result) + 1))
    return result
