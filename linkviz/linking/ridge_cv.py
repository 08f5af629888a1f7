"""Held-out errors of ridge fits for many penalties at once, from one eigendecomposition per training fold.

Two equivalent forms, chosen by the shape of the data: the *primal* one decomposes the D x D Gram matrix
``r_c^T r_c`` of a training fold (cheap when there are more pairs than units), the *dual* one the N x N kernel
``r_c r_c^T`` (cheap when there are fewer, e.g. 200 face pairs with r of 2048 values: a 200 x 200 instead of a
2048 x 2048 eigendecomposition per fold). Both have the same non-zero eigenvalues, so the same ridge gains and
null directions, and give the same errors up to rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from linkviz.linking.fit import _Moments

__all__ = ["dual_held_out_mse", "primal_held_out_mse", "ridge_gains"]


def ridge_gains(eigenvalues: np.ndarray, alphas: np.ndarray, noise_floor: float) -> np.ndarray:
    """Ridge gains ``1 / (lambda + alpha)``, shape (n_alphas, D); 0 for null directions (the pseudo-inverse).

    A direction is null when its eigenvalue is below ``noise_floor`` or below the eigensolver's accuracy.
    """
    accuracy = max(float(eigenvalues.max(initial=0.0)), 0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    signal = eigenvalues > max(noise_floor, accuracy)
    total = np.where(signal, eigenvalues, 1.0)[None, :] + alphas[:, None]
    return np.where(signal[None, :], 1.0 / total, 0.0)


def primal_held_out_mse(train: _Moments, held_out: _Moments, alphas: np.ndarray, w_dim: int,
                        noise_floor: float) -> np.ndarray:
    """MSE on ``held_out`` of ridge fits on ``train``, one per alpha, from one eigendecomposition."""
    x_mean, y_mean = train.sx / train.n, train.sy / train.n
    gram, cross, _ = train.centered(x_mean, y_mean)
    eigenvalues, vectors = np.linalg.eigh(gram)
    q = vectors.T @ cross                       # coefficients = V diag(g) q
    v_xx, v_xy, v_yy = held_out.centered(x_mean, y_mean)
    p = vectors.T @ v_xy
    linear = (q * p).sum(axis=1)                # tr(B^T Vxy) = g . linear
    quadratic = (vectors.T @ v_xx @ vectors) * (q @ q.T)   # tr(B^T Vxx B) = g^T quadratic g
    gains = ridge_gains(eigenvalues, alphas, noise_floor)
    sse = v_yy - 2 * gains @ linear + ((gains @ quadratic) * gains).sum(axis=1)
    return np.clip(sse, 0.0, None) / (held_out.n * w_dim)




def dual_held_out_mse(x: np.ndarray, y: np.ndarray, folds: list[np.ndarray], alphas: np.ndarray,
                      noise_floor: float) -> np.ndarray:
    """Held-out MSE of every fold and penalty, through the kernel of each training fold.

    Parameters
    ----------
    x : ndarray, shape (N, D), float64
        Inputs (shifted by their overall mean, as the primal form's moments are).
    y : ndarray, shape (N, w_dim), float64
        Targets, shifted likewise.
    folds : list of ndarray of int
        Row indices held out in each fold.
    alphas : ndarray, shape (n_alphas,)
        Ridge penalties.
    noise_floor : float
        Eigenvalue below which a direction is null (weight 0), as in :func:`ridge_gains`.

    Returns
    -------
    ndarray, shape (n_folds, n_alphas)
        Mean squared error over the held-out rows and the ``w_dim`` outputs.
    """
    rows = np.arange(len(x))
    errors = []
    for held_out in folds:
        train = np.setdiff1d(rows, held_out, assume_unique=True)
        x_mean, y_mean = x[train].mean(axis=0), y[train].mean(axis=0)
        x_train, y_train = x[train] - x_mean, y[train] - y_mean
        eigenvalues, vectors = np.linalg.eigh(x_train @ x_train.T)
        q = vectors.T @ y_train                                   # (n_train, w_dim)
        a = ((x[held_out] - x_mean) @ x_train.T) @ vectors          # (n_held, n_train)
        target = y[held_out] - y_mean
        gains = ridge_gains(eigenvalues, alphas, noise_floor)     # (n_alphas, n_train)
        sse = [float(((target - a @ (gain[:, None] * q)) ** 2).sum()) for gain in gains]
        errors.append(np.asarray(sse) / target.size)
    return np.stack(errors)
