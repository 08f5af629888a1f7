"""TV-L1 optical flow for a batch of small image pairs at once: scikit-image's solver with a leading batch axis.

:func:`skimage.registration.optical_flow_tvl1` solves one pair at a time; on small images (64 x 64) its cost is
almost all per-call NumPy overhead, so solving N pairs costs N times one. :func:`tvl1_flow_batch` runs the same
coarse-to-fine TV-L1 iterations (same pyramid, warps, fixed-point and dual steps, same stopping rule per pair)
on arrays of shape ``(N, ...)`` (in blocks of pairs, with preallocated arrays and in-place updates), so a batch
costs far less than N calls. Results agree with scikit-image's to float32 rounding.

Cost at 64 x 64 px, one thread (``benchmarks/bench_flow.py --batch``): ~10 ms CPU per pair with scikit-image's
5 warps x 10 iterations, ~2.6 ms with the tuner's 2 x 5 (same accuracy on the known-motion tests).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import pyramid_reduce

__all__ = ["tvl1_flow_batch"]

_DOWNSCALE = 2
_MAX_LEVELS = 10
_MIN_SIZE = 16
_REG_ITERATIONS = 2
# Pairs are solved in blocks of about this many pixels (16 pairs at 64 x 64): the solver makes ~150 passes over
# its arrays per pyramid level, and a block's working arrays (~10 MiB at 16 pairs of 64 px) stay in the last-level
# cache and do not grow with the batch (measured at 64 px, 1 thread: 1.3x faster than one block of 128 pairs,
# 1.1-1.2x faster than blocks of 8 or 32; results are the same, pairs are independent).
_BLOCK_PIXELS = 2**16


def tvl1_flow_batch(reference_images: np.ndarray, moving_images: np.ndarray, *, attachment: float = 15.0,
                    tightness: float = 0.3, num_warp: int = 5, num_iter: int = 10, tol: float = 1e-4,
                    prefilter: bool = False) -> np.ndarray:
    """Dense TV-L1 flow from each reference image to its moving image, all pairs solved together.

    Parameters
    ----------
    reference_images, moving_images : ndarray, shape (N, H, W)
        Grey images (any real dtype, e.g. rescaled to [0, 1]); pair ``i`` is ``(reference_images[i],
        moving_images[i])``.
    attachment, tightness, num_warp, num_iter, tol, prefilter
        As in :func:`skimage.registration.optical_flow_tvl1` (same defaults).

    Returns
    -------
    ndarray, shape (N, 2, H, W), float32
        ``(row, col)`` displacement of each pair on its reference grid, as ``optical_flow_tvl1`` returns it.

    Raises
    ------
    ValueError
        If the batches are not (N, H, W) of one shape, or an option is out of range.
    """
    reference_images, moving_images = np.asarray(reference_images), np.asarray(moving_images)
    if reference_images.ndim != 3 or reference_images.shape != moving_images.shape:
        raise ValueError(f"reference_images and moving_images must both have shape (N, H, W); got "
                         f"{reference_images.shape} and {moving_images.shape}")
    if num_warp < 1 or num_iter < 1 or not attachment > 0 or not tightness > 0:
        raise ValueError("num_warp and num_iter must be >= 1, attachment and tightness > 0; got "
                         f"{num_warp}, {num_iter}, {attachment}, {tightness}")
    block = max(1, _BLOCK_PIXELS // max(1, reference_images.shape[1] * reference_images.shape[2]))
    flows = [_solve_pyramid(reference_images[start:start + block], moving_images[start:start + block],
                            attachment=attachment, tightness=tightness, num_warp=num_warp, num_iter=num_iter,
                            tol=tol, prefilter=prefilter)
             for start in range(0, len(reference_images), block)]
    return np.concatenate(flows) if flows else np.zeros((0, 2, *reference_images.shape[1:]), np.float32)


def _solve_pyramid(reference_images: np.ndarray, moving_images: np.ndarray, **options) -> np.ndarray:
    """Coarse-to-fine TV-L1 of one block of pairs (N, H, W) -> flows (N, 2, H, W)."""
    levels = list(zip(_pyramid(reference_images.astype(np.float32)), _pyramid(moving_images.astype(np.float32))))
    flow = np.zeros((len(reference_images), 2, *levels[0][0].shape[1:]), dtype=np.float32)
    for level, (reference, moving) in enumerate(levels):
        if level:
            flow = _resize_flow(flow, reference.shape[1:])
        flow = _solve(reference, moving, flow, **options)
    return flow


def _pyramid(images: np.ndarray) -> list[np.ndarray]:
    """Coarse-to-fine pyramid of a batch (N, H, W), as scikit-image builds it for one image."""
    pyramid = [images]
    while len(pyramid) < _MAX_LEVELS and min(pyramid[-1].shape[1:]) > _DOWNSCALE * _MIN_SIZE:
        pyramid.append(pyramid_reduce(pyramid[-1], _DOWNSCALE, channel_axis=0).astype(np.float32))
    return pyramid[::-1]


def _resize_flow(flow: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Flows (N, 2, h, w) resampled (nearest) to ``shape`` with their values scaled to the new resolution."""
    scale = [new / old for new, old in zip(shape, flow.shape[2:])]
    factor = np.array(scale, dtype=flow.dtype)[None, :, None, None]
    return factor * ndi.zoom(flow, [1, 1, *scale], order=0, mode="nearest", prefilter=False)


def _warp_bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``images (N, H, W)`` sampled at ``(rows, cols) (N, H, W)``, bilinear, edge values outside."""
    n, height, width = images.shape
    rows = np.clip(rows, 0, height - 1)
    cols = np.clip(cols, 0, width - 1)
    row0 = np.minimum(np.floor(rows).astype(np.intp), max(height - 2, 0))
    col0 = np.minimum(np.floor(cols).astype(np.intp), max(width - 2, 0))
    row_frac, col_frac = rows - row0, cols - col0
    flat = images.reshape(n, -1)
    base = (row0 * width + col0).reshape(n, -1)
    row_step, col_step = int(height > 1) * width, int(width > 1)

    def at(offset: int) -> np.ndarray:
        return np.take_along_axis(flat, base + offset, axis=1).reshape(n, height, width)

    top = at(0) * (1 - col_frac) + at(col_step) * col_frac
    bottom = at(row_step) * (1 - col_frac) + at(row_step + col_step) * col_frac
    return top * (1 - row_frac) + bottom * row_frac


def _solve(reference: np.ndarray, moving: np.ndarray, flow0: np.ndarray, *, attachment: float, tightness: float,
           num_warp: int, num_iter: int, tol: float, prefilter: bool) -> np.ndarray:
    """One pyramid level of scikit-image's ``_tvl1`` for every pair; a pair stops when its flow settles.

    The arithmetic is scikit-image's, written with preallocated arrays and in-place operations (the batch's
    arrays are touched ~150 times per level, so temporaries, not arithmetic, set the cost).
    """
    n, height, width = reference.shape
    rows = np.arange(height, dtype=np.float32)[None, :, None]
    cols = np.arange(width, dtype=np.float32)[None, None, :]
    dt = np.float32(0.5 / 2)
    f0, f1 = np.float32(attachment * tightness), np.float32(dt / tightness)
    tol = tol * height * width
    result = flow0.copy()
    active = np.arange(n)
    flow = flow0.astype(np.float32, copy=True)
    # dual variables of both flow components along rows (p_row) and columns (p_col): [pair, component, row, col]
    p_row = np.zeros((n, 2, height, width), dtype=np.float32)
    p_col = np.zeros_like(p_row)
    for _ in range(num_warp):
        if prefilter:
            flow = ndi.median_filter(flow, [1, 1, 3, 3])
        warped = _warp_bilinear(moving[active], rows + flow[:, 0], cols + flow[:, 1]).astype(np.float32)
        grad = np.stack(np.gradient(warped, axis=(1, 2)), axis=1)
        norm_grad = (grad * grad).sum(1)
        norm_grad[norm_grad == 0] = 1
        rho_0 = warped - reference[active] - (grad * flow).sum(1)
        first_auxiliary = _tv_iterations(flow, grad, norm_grad, rho_0, p_row, p_col, f0=f0, f1=f1, dt=dt,
                                         num_iter=num_iter)
        result[active] = flow
        change = ((first_auxiliary - flow) ** 2).sum(axis=(1, 2, 3))
        going = change >= tol
        if not going.any():
            break
        active, flow, p_row, p_col = active[going], flow[going], p_row[going], p_col[going]
    return result


def _tv_iterations(flow: np.ndarray, grad: np.ndarray, norm_grad: np.ndarray, rho_0: np.ndarray,
                   p_row: np.ndarray, p_col: np.ndarray, *, f0: np.float32, f1: np.float32, dt: np.float32,
                   num_iter: int) -> np.ndarray:
    """``num_iter`` fixed-point steps of one warp, updating ``flow`` [N, 2, H, W] and the duals in place.

    Returns the auxiliary flow of the first step (scikit-image's stopping rule compares it with the result).
    Both flow components are regularised at once: their dual problems are independent.
    """
    n, _, height, width = flow.shape
    shape = (n, 2, height, width)
    g_row, g_col = np.zeros(shape, np.float32), np.zeros(shape, np.float32)  # last row / column stay 0
    norm, scratch, divergence = np.empty(shape, np.float32), np.empty(shape, np.float32), np.empty(shape, np.float32)
    rho, step = np.empty((n, height, width), np.float32), np.empty((n, height, width), np.float32)
    auxiliary, first_auxiliary = np.empty(shape, np.float32), None
    for iteration in range(num_iter):
        np.multiply(grad[:, 0], flow[:, 0], out=rho)  # rho = rho_0 + <grad, flow>
        np.multiply(grad[:, 1], flow[:, 1], out=step)
        rho += step
        rho += rho_0
        np.divide(rho, norm_grad, out=step)  # |rho| <= f0 |grad|^2: rho / |grad|^2, else f0 sign(rho)
        np.clip(step, -f0, f0, out=step)
        np.multiply(step[:, None], grad, out=auxiliary)
        np.subtract(flow, auxiliary, out=auxiliary)
        if iteration == 0:
            first_auxiliary = auxiliary.copy()
        flow[...] = auxiliary
        for _ in range(_REG_ITERATIONS):
            np.subtract(flow[:, :, 1:, :], flow[:, :, :-1, :], out=g_row[:, :, :-1, :])
            np.subtract(flow[:, :, :, 1:], flow[:, :, :, :-1], out=g_col[:, :, :, :-1])
            np.multiply(g_row, g_row, out=norm)
            np.multiply(g_col, g_col, out=scratch)
            norm += scratch
            np.sqrt(norm, out=norm)
            norm *= f1
            norm += 1.0
            g_row *= dt
            p_row -= g_row
            p_row /= norm
            g_col *= dt
            p_col -= g_col
            p_col /= norm
            np.add(p_row, p_col, out=divergence)
            np.negative(divergence, out=divergence)
            divergence[:, :, 1:, :] += p_row[:, :, :-1, :]
            divergence[:, :, :, 1:] += p_col[:, :, :, :-1]
            np.add(auxiliary, divergence, out=flow)
    return first_auxiliary
