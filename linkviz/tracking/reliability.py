"""Where a dense flow can be trusted: enough image structure, and forward and backward flows that agree.

Optical flow is only measured where the reference image has structure; on flat regions (a clear sky, a plain
background) TV-L1 fills the flow in from the neighbourhood, and arrows drawn there show motion that no pixel
made. Where content appears, disappears or changes instead of moving, the flow from A to B and the flow from B
back to A disagree. Two masks capture this:

- :func:`structure_mask`: the local RMS gradient of the reference image (the square root of the structure tensor's
  trace, i.e. Sobel-like gradient energy averaged over a Gaussian window) at least ``min_gradient`` grey levels
  (of a [0, 1] range) per pixel;
- :func:`consistency_mask`: the forward-backward check of Sundaram, Brox & Keutzer (ECCV 2010), ``|f(x) +
  b(x + f(x))|^2 <= relative (|f(x)|^2 + |b(x + f(x))|^2) + absolute``.

:func:`reliable_motion` is their conjunction; :func:`linkviz.tracking.strongest_motions` and
:func:`linkviz.tracking.draw_motion_arrows` take it as ``mask=`` (or read :attr:`MotionField.reliable`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2gray

__all__ = ["consistency_mask", "forward_backward_error", "reliable_motion", "structure_mask", "structure_strength"]

MIN_GRADIENT = 0.01
"""Default smallest local RMS gradient (grey levels of a [0, 1] range per pixel, 2.5 levels of 255) where flow is
measured; the flat backgrounds of the toy world's images stay below 0.003."""
FB_RELATIVE, FB_ABSOLUTE = 0.01, 0.5
"""Default forward-backward tolerance: ``relative`` times the squared motion plus ``absolute`` pixels squared."""


def _unit_gray(image: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """``image`` (H, W) or (H, W, 3) as float64 grey in [0, 1]: uint8 / 255, else by ``value_range``."""
    image = np.asarray(image)
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"image must have shape (H, W) or (H, W, 3) (channels last); got {image.shape}")
    if value_range is None:
        low, high = (0.0, 255.0) if image.dtype == np.uint8 else (0.0, 1.0)
    else:
        low, high = value_range
        if not high > low:
            raise ValueError(f"value_range must be increasing; got {value_range}")
    unit = (np.nan_to_num(image.astype(np.float64)) - low) / (high - low)
    return rgb2gray(unit) if unit.ndim == 3 else unit


def structure_strength(image: np.ndarray, *, sigma: float = 1.5,
                       value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Local RMS gradient of an image: ``sqrt(G_sigma * |grad I|^2)``, the square root of the structure tensor's trace.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        uint8 (0-255) or float in ``value_range``.
    sigma : float
        Standard deviation in pixels of the Gaussian window the gradient energy is averaged over, so that pixels
        next to an edge or inside a fine texture count as structured.
    value_range : (float, float), optional
        Black and white levels of a float image; default (0, 1) (uint8: (0, 255)).

    Returns
    -------
    ndarray, shape (H, W), float64
        Grey levels (of a [0, 1] range) per pixel.
    """
    gray = _unit_gray(image, value_range)
    d_row, d_col = ndi.sobel(gray, axis=0) / 8, ndi.sobel(gray, axis=1) / 8  # central differences, smoothed across
    energy = d_row ** 2 + d_col ** 2
    if sigma > 0:
        energy = ndi.gaussian_filter(energy, sigma, mode="nearest")
    return np.sqrt(energy)


def structure_mask(image: np.ndarray, *, min_gradient: float = MIN_GRADIENT, sigma: float = 1.5,
                   value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Pixels with enough structure to measure motion: :func:`structure_strength` >= ``min_gradient``.

    Returns
    -------
    ndarray, shape (H, W), bool
    """
    if min_gradient < 0:
        raise ValueError(f"min_gradient must be >= 0; got {min_gradient}")
    return structure_strength(image, sigma=sigma, value_range=value_range) >= min_gradient


def _check_flow(flow: np.ndarray, name: str) -> np.ndarray:
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"{name} must have shape (2, H, W); got {flow.shape}")
    return flow


def forward_backward_error(forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far the round trip x -> x + f(x) -> x + f(x) + b(x + f(x)) misses x.

    Parameters
    ----------
    forward : ndarray, shape (2, H, W)
        ``(row, col)`` flow from image A to image B on A's grid.
    backward : ndarray, shape (2, H, W)
        Flow from B to A on B's grid.

    Returns
    -------
    error : ndarray, shape (H, W)
        ``|f(x) + b(x + f(x))|`` in pixels (``b`` sampled bilinearly); inf where ``x + f(x)`` leaves the image.
    backward_at : ndarray, shape (2, H, W)
        ``b(x + f(x))``.
    """
    forward, backward = _check_flow(forward, "forward"), _check_flow(backward, "backward")
    if forward.shape != backward.shape:
        raise ValueError(f"forward {forward.shape} and backward {backward.shape} must have the same shape")
    height, width = forward.shape[1:]
    rows, cols = np.mgrid[:height, :width].astype(np.float64)
    target = np.stack([rows + forward[0], cols + forward[1]])
    backward_at = np.stack([ndi.map_coordinates(component, target, order=1, mode="nearest")
                            for component in backward])
    error = np.hypot(*(forward + backward_at))
    outside = ((target[0] < -0.5) | (target[0] > height - 0.5) | (target[1] < -0.5) | (target[1] > width - 0.5))
    error[outside] = np.inf
    return error, backward_at


def consistency_mask(forward: np.ndarray, backward: np.ndarray, *, relative: float = FB_RELATIVE,
                     absolute: float = FB_ABSOLUTE) -> np.ndarray:
    """Pixels whose forward and backward flows agree (Sundaram et al. 2010's occlusion check).

    Parameters
    ----------
    forward, backward : ndarray, shape (2, H, W)
        As in :func:`forward_backward_error`.
    relative : float
        Tolerated squared round-trip error per squared motion (larger motions are measured less precisely).
    absolute : float
        Tolerated squared round-trip error in pixels squared.

    Returns
    -------
    ndarray, shape (H, W), bool
        ``|f + b'|^2 <= relative (|f|^2 + |b'|^2) + absolute`` with ``b' = b(x + f(x))``.
    """
    if relative < 0 or absolute < 0:
        raise ValueError(f"relative and absolute must be >= 0; got {relative}, {absolute}")
    error, backward_at = forward_backward_error(forward, backward)
    forward = np.asarray(forward, dtype=np.float64)
    tolerance = relative * ((forward ** 2).sum(0) + (backward_at ** 2).sum(0)) + absolute
    return error ** 2 <= tolerance


def reliable_motion(reference_image: np.ndarray, forward: np.ndarray, backward: np.ndarray | None = None, *,
                    min_gradient: float = MIN_GRADIENT, sigma: float = 1.5, relative: float = FB_RELATIVE,
                    absolute: float = FB_ABSOLUTE, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Pixels of ``reference_image`` where the flow ``forward`` can be trusted.

    Parameters
    ----------
    reference_image : ndarray, shape (H, W) or (H, W, 3)
        The image the flow starts from (uint8, or float in ``value_range``).
    forward : ndarray, shape (2, H, W)
        Flow from the reference image to the moving image.
    backward : ndarray, shape (2, H, W), optional
        Flow from the moving image back to the reference; without it only the structure test is made.
    min_gradient, sigma
        As in :func:`structure_mask`.
    relative, absolute
        As in :func:`consistency_mask`.
    value_range : (float, float), optional
        Black and white levels of a float image; default (0, 1).

    Returns
    -------
    ndarray, shape (H, W), bool
        Structured and (given ``backward``) forward-backward consistent.
    """
    forward = _check_flow(forward, "forward")
    mask = structure_mask(reference_image, min_gradient=min_gradient, sigma=sigma, value_range=value_range)
    if mask.shape != forward.shape[1:]:
        raise ValueError(f"reference_image {mask.shape} and forward {forward.shape[1:]} must cover the same pixels")
    if backward is not None:
        mask &= consistency_mask(forward, backward, relative=relative, absolute=absolute)
    return mask
