"""Fit the linear link r -> w in closed form: OLS or ridge with the penalty chosen by k-fold CV.

Ridge for every candidate penalty and every fold comes from one eigendecomposition of each training fold's
centred Gram matrix ``r_c^T r_c``; held-out errors are computed from per-fold sufficient statistics, so the data
are read once and no model is refitted per penalty. The BLAS/LAPACK threads of a fit are an argument
(``threads``), set for the call only: on a machine shared with other jobs, LAPACK's eigendecomposition with more
threads than free cores runs many times slower than with one (``benchmarks/README.md``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.linalg
import torch
from threadpoolctl import threadpool_limits

from linkviz.linking.link import LinearLink
from linkviz.linking.ridge_cv import dual_held_out_mse, primal_held_out_mse, ridge_gains

__all__ = ["LinkFit", "fit_linear_link"]

_DEFAULT_RELATIVE_ALPHAS = np.logspace(-6, 2, 17)


@dataclass(frozen=True)
class LinkFit:
    """A fitted linear link and how it was chosen.

    Attributes
    ----------
    link : LinearLink
        ``w = link.weight @ r + link.bias``.
    method : {"ols", "ridge"}
        The method actually used ("ridge" also when "ols" fell back for too few pairs).
    alpha : float
        Ridge penalty of the returned link (0.0 for OLS).
    cv_scores : dict of float to float
        Candidate penalty -> held-out MSE averaged over the folds (for OLS, ``{0.0: mse}``).
    train_mse : float
        MSE of ``link`` on all pairs it was fitted on.

    Notes
    -----
    MSE is the mean over pairs and latent dimensions, ``mean((w - w_pred) ** 2)``, as in the reference.
    """

    link: LinearLink
    method: Literal["ols", "ridge"]
    alpha: float
    cv_scores: dict[float, float]
    train_mse: float

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the cross-validation: one row per candidate ``alpha`` with ``cv_mse`` and ``selected``."""
        alphas = list(self.cv_scores)
        return pd.DataFrame({
            "alpha": alphas,
            "cv_mse": [self.cv_scores[a] for a in alphas],
            "selected": [a == self.alpha for a in alphas],
        })


@dataclass(frozen=True)
class _Moments:
    """Sums over a subset of pairs: n, sum x, sum y, x^T x, x^T y, sum y^2 (float64)."""

    n: int
    sx: np.ndarray
    sy: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: float

    def __sub__(self, other: _Moments) -> _Moments:
        return _Moments(self.n - other.n, self.sx - other.sx, self.sy - other.sy, self.xx - other.xx,
                        self.xy - other.xy, self.yy - other.yy)

    def __add__(self, other: _Moments) -> _Moments:
        return _Moments(self.n + other.n, self.sx + other.sx, self.sy + other.sy, self.xx + other.xx,
                        self.xy + other.xy, self.yy + other.yy)

    def centered(self, x_mean: np.ndarray, y_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """``(x - x_mean)^T (x - x_mean)``, ``(x - x_mean)^T (y - y_mean)`` and ``sum (y - y_mean)^2``."""
        xx = (self.xx - np.outer(x_mean, self.sx) - np.outer(self.sx, x_mean)
              + self.n * np.outer(x_mean, x_mean))
        xy = (self.xy - np.outer(x_mean, self.sy) - np.outer(self.sx, y_mean)
              + self.n * np.outer(x_mean, y_mean))
        yy = self.yy - 2 * float(self.sy @ y_mean) + self.n * float(y_mean @ y_mean)
        return xx, xy, yy


def _as_matrix(name: str, array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, dim), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    n_bad = int(np.size(array) - np.isfinite(array).sum())
    if n_bad:
        raise ValueError(f"{name} contains {n_bad} non-finite values (NaN or inf) out of {array.size}")
    return array


def validate_pairs(r: np.ndarray | torch.Tensor, w: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Check that ``r`` (N, D) and ``w`` (N, w_dim) are finite, 2-D and paired row by row; return numpy arrays.

    Raises
    ------
    ValueError
        For non-2-D or non-numeric arrays, NaN or inf (with their count), or different row counts.
    """
    r, w = _as_matrix("r", r), _as_matrix("w", w)
    if len(r) != len(w):
        raise ValueError(f"r has {len(r)} rows but w has {len(w)}; row i of r must come from the image of w[i]")
    return r, w


def _moments(x: np.ndarray, y: np.ndarray) -> _Moments:
    return _Moments(len(x), x.sum(0), y.sum(0), x.T @ x, x.T @ y, float((y * y).sum()))  # x.T @ x uses syrk


def _fold_moments(r: np.ndarray, w: np.ndarray, folds: list[np.ndarray], r_shift: np.ndarray,
                  w_shift: np.ndarray) -> list[_Moments]:
    """Moments of each fold in float64, after shifting by the overall means (keeps the Gram well scaled)."""
    return [_moments(r[fold].astype(np.float64) - r_shift, w[fold].astype(np.float64) - w_shift)
            for fold in folds]


def _noise_floor(total: _Moments, r_shift: np.ndarray, dtype: np.dtype) -> float:
    """Eigenvalue of ``r_c^T r_c`` below which a direction is rounding noise of the stored ``r``, not signal.

    A random (N, D) matrix with entries of size ``eps * rms(r)`` (``eps`` of r's dtype) has spectral norm about
    ``eps * rms(r) * (sqrt(N) + sqrt(D))``; directions with less spread than 10 times that are treated as null.
    """
    eps = np.finfo(dtype).eps if np.issubdtype(dtype, np.floating) else np.finfo(np.float64).eps
    sum_of_squares = np.trace(total.xx) + 2 * r_shift @ total.sx + total.n * r_shift @ r_shift  # of unshifted r
    rms = float(np.sqrt(max(sum_of_squares, 0.0) / (total.n * len(r_shift))))
    return float((10 * eps * rms * (np.sqrt(total.n) + np.sqrt(len(r_shift)))) ** 2)


def _final_fit(total: _Moments, alpha: float, w_dim: int, noise_floor: float
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients (D, w_dim) and intercept on the shifted scale, and the training MSE.

    A penalty well above the noise floor makes the system well conditioned: a Cholesky solve. Otherwise the
    eigendecomposition gives the same (pseudo-inverse) solution as the cross-validation used.
    """
    x_mean, y_mean = total.sx / total.n, total.sy / total.n
    gram, cross, y_sse = total.centered(x_mean, y_mean)
    if alpha > 100 * noise_floor:
        coefficients = scipy.linalg.solve(gram + alpha * np.eye(len(gram)), cross, assume_a="pos")
    else:
        eigenvalues, vectors = np.linalg.eigh(gram)
        gains = ridge_gains(eigenvalues, np.array([alpha]), noise_floor)[0]
        coefficients = vectors @ (gains[:, None] * (vectors.T @ cross))
    sse = y_sse - 2 * float((coefficients * cross).sum()) + float((coefficients * (gram @ coefficients)).sum())
    intercept = y_mean - x_mean @ coefficients
    return coefficients, intercept, max(sse, 0.0) / (total.n * w_dim)


def _row_groups(array: np.ndarray) -> np.ndarray:
    """Id of each row of ``array`` (N, dim), equal for rows with the same bytes (so ``0.0`` and ``-0.0`` differ)."""
    rows = np.ascontiguousarray(array)
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    return np.unique(as_bytes, return_inverse=True)[1].ravel()


def _row_hashes(array: np.ndarray) -> np.ndarray:
    """A hash of each row's bytes, shape (N,) int64: equal rows hash equally (different rows rarely collide)."""
    rows = np.ascontiguousarray(array)
    return np.fromiter((hash(row.tobytes()) for row in rows), dtype=np.int64, count=len(rows))


def _duplicate_groups(r: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, int]:
    """Group id of each pair, shape (N,), equal for exact copies of one (r, w) row, and the number of extra copies.

    Groups are numbered in order of first appearance, so de-duplicated pairs get the same folds as their copies.
    Pairs whose row hashes are all distinct are all distinct (the common case, one pass over the data); only a
    hash collision or a real copy pays for the exact grouping by bytes.
    """
    hashes = np.stack([_row_hashes(r), _row_hashes(w)], axis=1)
    if len(np.unique(hashes, axis=0)) == len(r):
        return np.arange(len(r)), 0
    r_groups, w_groups = _row_groups(r), _row_groups(w)
    keys = r_groups * (int(w_groups.max(initial=0)) + 1) + w_groups
    _, first, groups = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[groups.ravel()], len(r) - len(first)


def _cv_folds(groups: np.ndarray, n_duplicates: int, cv: int, seed: int) -> list[np.ndarray]:
    """Indices of the pairs held out in each of ``cv`` folds; copies of one pair always share a fold.

    Without duplicates this is ``array_split(permutation(N), cv)``; with them, the distinct pairs are permuted
    and split into ``cv`` folds (GroupKFold-style) and each fold takes every copy of its pairs.
    """
    rng = np.random.default_rng(seed)
    if n_duplicates == 0:
        return np.array_split(rng.permutation(len(groups)), cv)
    n_groups = int(groups.max()) + 1
    if n_groups < cv:
        raise ValueError(f"only {n_groups} distinct (r, w) pairs among {len(groups)} (the rest are exact copies); "
                         f"{cv}-fold cross-validation needs at least cv={cv} distinct pairs: sample more pairs "
                         "or drop the copies")
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    for fold, members in enumerate(np.array_split(rng.permutation(n_groups), cv)):
        fold_of_group[members] = fold
    fold_of_pair = fold_of_group[groups]
    return [np.flatnonzero(fold_of_pair == fold) for fold in range(cv)]


def _check_options(method: str, alphas: Sequence[float] | None, cv: int, n: int) -> None:
    if method not in ("ols", "ridge"):
        raise ValueError(f"method must be 'ols' or 'ridge', got {method!r}")
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an int >= 2 (number of folds), got {cv!r}")
    if n < cv:
        raise ValueError(f"need at least cv={cv} pairs for {cv}-fold cross-validation, got {n}")
    if alphas is not None:
        values = np.asarray(alphas, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"alphas must be a non-empty 1-D sequence of penalties, got {alphas!r}")
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"alphas must be finite and >= 0, got {list(values)}")


def fit_linear_link(
    r: np.ndarray | torch.Tensor,
    w: np.ndarray | torch.Tensor,
    *,
    method: Literal["ols", "ridge"] = "ridge",
    alphas: Sequence[float] | None = None,
    cv: int = 5,
    seed: int = 0,
    threads: int | None = None,
) -> LinkFit:
    """Fit ``w = A r + b`` by least squares with an intercept (OLS) or with a ridge penalty chosen by k-fold CV.

    Ridge minimises ``||w_c - r_c A^T||^2 + alpha ||A||^2`` on centred ``r_c, w_c`` (the intercept is not
    penalised), like ``sklearn.linear_model.Ridge``. For each training fold the centred Gram matrix is
    eigendecomposed once and reused for every ``alpha``. OLS is the minimum-norm least-squares solution (the
    pseudo-inverse), so constant units such as dead ReLUs get weight 0. Directions of r whose spread is at the
    level of float rounding of the stored ``r`` count as null (weight 0) for both methods.

    Parameters
    ----------
    r : ndarray or Tensor, shape (N, D)
        Classifier penultimate activations.
    w : ndarray or Tensor, shape (N, w_dim)
        Latents, row ``i`` belonging to the image that gave ``r[i]``.
    method : {"ols", "ridge"}
        "ols" needs ``N > D + 1``; with fewer pairs it warns and falls back to "ridge".
    alphas : sequence of float, optional
        Candidate ridge penalties (>= 0). ``None``: 17 values log-spaced over ``[1e-6, 1e2]`` times the mean
        eigenvalue of the centred Gram matrix ``r_c^T r_c`` of all pairs (``N`` times the mean per-unit variance).
        Ignored by OLS.
    cv : int
        Number of folds (>= 2); also used to report OLS's held-out MSE.
    seed : int
        Seed of the random fold assignment. Exact copies of a pair always share a fold (folds are drawn over the
        distinct pairs, like ``GroupKFold``).
    threads : int, optional
        BLAS/LAPACK threads for this fit (restored afterwards; ``None`` leaves the process's setting). Use 1
        when other jobs share the cores or several fits run in parallel: an oversubscribed eigendecomposition
        is several times slower than a single-threaded one.

    Returns
    -------
    LinkFit
        The link, the method used, the chosen ``alpha``, the CV table and the training MSE.

    Raises
    ------
    ValueError
        If ``r`` or ``w`` is not 2-D, has NaN or inf (the count is given), their row counts differ, there are
        fewer than ``cv`` (distinct) pairs, or ``method``, ``alphas``, ``cv`` or ``threads`` is invalid.

    Warns
    -----
    UserWarning
        When ``method="ols"`` gets ``N <= D + 1`` pairs (OLS would interpolate); ridge is fitted instead.
    UserWarning
        When some pairs are exact copies of others (the count is given). Copies of one pair are always put in the
        same fold, so the held-out error (and the chosen ``alpha``) is not fooled by a copy seen in training.
    """
    r, w = validate_pairs(r, w)
    n, d = r.shape
    _check_options(method, alphas, cv, n)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise ValueError(f"threads must be a positive int or None (leave the BLAS setting), got {threads!r}")
    if method == "ols" and n <= d + 1:
        warnings.warn(f"too few pairs for OLS: N={n} <= D+1={d + 1} with D={d} units, so least squares would "
                      "interpolate; falling back to ridge with alpha chosen by cross-validation", stacklevel=2)
        method = "ridge"

    if method == "ridge" and alphas is None and not np.ptp(r, axis=0).any():
        raise ValueError("every unit of r is constant over the pairs; there is nothing to regress on")
    groups, n_duplicates = _duplicate_groups(r, w)
    if n_duplicates:
        warnings.warn(f"found {n_duplicates} exact duplicate (r, w) pairs among N={n} (only {n - n_duplicates} "
                      "distinct); copies of one pair are kept in the same cross-validation fold so they do not "
                      "leak into the held-out error, but they still weigh more in the fit: de-duplicate the pairs "
                      "if the copies are accidental", stacklevel=2)
    with threadpool_limits(limits=threads, user_api="blas"):  # for this fit only; None: no change
        folds = _cv_folds(groups, n_duplicates, cv, seed)
        r_shift = r.mean(axis=0, dtype=np.float64)
        w_shift = w.mean(axis=0, dtype=np.float64)
        fold_moments = _fold_moments(r, w, folds, r_shift, w_shift)
        total = fold_moments[0]
        for moments in fold_moments[1:]:
            total = total + moments

        if method == "ols":
            candidates = np.array([0.0])
        elif alphas is None:
            gram, _, _ = total.centered(total.sx / n, total.sy / n)
            scale = float(np.trace(gram)) / d
            if scale <= 0:
                raise ValueError("every unit of r is constant over the pairs; there is nothing to regress on")
            candidates = scale * _DEFAULT_RELATIVE_ALPHAS
        else:
            candidates = np.asarray(alphas, dtype=np.float64)

        w_dim = w.shape[1]
        noise_floor = _noise_floor(total, r_shift, r.dtype)
        if n - min(len(fold) for fold in folds) < d:  # fewer training pairs than units: the n x n kernel is smaller
            fold_mse = dual_held_out_mse(r.astype(np.float64) - r_shift, w.astype(np.float64) - w_shift, folds,
                                         candidates, noise_floor)
        else:
            fold_mse = np.stack([primal_held_out_mse(total - held_out, held_out, candidates, w_dim, noise_floor)
                                 for held_out in fold_moments])
        mean_mse = fold_mse.mean(axis=0)
        alpha = float(candidates[int(np.argmin(mean_mse))])
        coefficients, intercept, train_mse = _final_fit(total, alpha, w_dim, noise_floor)
        weight = coefficients.T
        bias = intercept + w_shift - weight @ r_shift
        return LinkFit(
            link=LinearLink(weight=weight.astype(np.float32), bias=bias.astype(np.float32)),
            method=method,
            alpha=alpha,
            cv_scores={float(a): float(s) for a, s in zip(candidates, mean_mse)},
            train_mse=float(train_mse),
        )
