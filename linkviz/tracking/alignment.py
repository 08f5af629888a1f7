"""Global alignment of a moving image onto a reference image (translation or affine).

Two estimators, both from scikit-image:

- ``"phase"``: Fourier cross-correlation (:func:`skimage.registration.phase_cross_correlation` on Hann-windowed,
  zero-mean images, without whitening, which on smooth non-periodic images locks onto the image border), a pure
  translation to ``1 / upsample_factor`` pixel; two re-estimation passes on the shifted image remove the bias
  the window adds. Best for clean shifts; blind to rotation and scale.
- ``"features"``: SIFT (or ORB) keypoints, :func:`skimage.feature.match_descriptors`, and
  :func:`skimage.measure.ransac` with an :class:`~skimage.transform.AffineTransform`, then (``refine=True``) a
  robust least-squares polish of the affine on the pixel intensities, which takes the keypoints' ~0.5 px
  localisation noise down to ~0.01 px.

``"auto"`` uses the feature path and falls back to phase correlation where it finds too few inliers (small or
weakly textured images). Images without any contrast are returned unaligned (``method == "identity"``), and so
is every pair with ``"none"`` (for pairs that are registered already, e.g. two images of one generator; no
estimate, no resampling).

Coordinates: :attr:`Alignment.matrix` follows scikit-image's transform convention, homogeneous ``(x, y, 1) =
(col, row, 1)``; it maps a reference pixel to the moving-image position its content moved to, so
``skimage.transform.warp(moving_image, Alignment.transform)`` resamples the moving image onto the reference grid.
Translations are reported as ``(row, col)``, like the dense flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import least_squares
from skimage import feature
from skimage.color import rgb2gray
from skimage.filters import window
from skimage.measure import ransac
from skimage.registration import phase_cross_correlation
from skimage.transform import AffineTransform, warp

__all__ = ["AlignMethod", "Alignment", "AlignmentError", "align_images"]

AlignMethod = Literal["auto", "phase", "features", "none"]
_METHODS: tuple[str, ...] = ("auto", "phase", "features", "none")
_MIN_SIZE = 8
# Refinement may move the RANSAC estimate by at most this many pixels (image corners); more means it diverged.
_MAX_REFINE_SHIFT = 3.0
# About this many pixels enter the least-squares refinement; larger images are subsampled on a regular grid.
_REFINE_PIXELS = 16_384
# Re-estimations of the phase-correlation shift after undoing the current estimate.
_PHASE_PASSES = 2


class AlignmentError(RuntimeError):
    """The requested estimator could not align the images (e.g. too few feature matches)."""


@dataclass(frozen=True, eq=False)
class Alignment:
    """A global alignment of ``moving_image`` onto ``reference_image``.

    Attributes
    ----------
    matrix : ndarray, shape (3, 3)
        Forward transform in homogeneous ``(col, row, 1)`` coordinates: reference pixel -> position in the moving
        image (scikit-image's ``AffineTransform`` convention).
    warped : ndarray, shape (H, W) or (H, W, C), float64
        The moving image resampled onto the reference grid (bicubic, edge-padded, clipped to its input range).
    valid : ndarray, shape (H, W), bool
        Pixels of ``warped`` whose source lies inside the moving image (False where edge padding was used).
    method : {"phase", "features", "identity"}
        Estimator that produced ``matrix``.
    n_matches : int
        Descriptor matches fed to RANSAC (0 for phase correlation).
    n_inliers : int
        RANSAC inliers of the final model (0 for phase correlation).
    refined : bool
        Whether the RANSAC affine was polished by intensity least squares.
    """

    matrix: np.ndarray
    warped: np.ndarray
    valid: np.ndarray
    method: str
    n_matches: int = 0
    n_inliers: int = 0
    refined: bool = False

    @property
    def transform(self) -> AffineTransform:
        """The forward transform as a scikit-image ``AffineTransform`` (usable as ``warp``'s inverse map)."""
        return AffineTransform(matrix=self.matrix)

    @property
    def translation(self) -> np.ndarray:
        """Displacement ``(row, col)`` in pixels of the image centre; for a pure shift, the shift itself."""
        rows, cols = self.warped.shape[:2]
        centre = np.array([(cols - 1) / 2, (rows - 1) / 2, 1.0])
        moved = self.matrix @ centre
        return np.array([moved[1] - centre[1], moved[0] - centre[0]])

    @property
    def rotation(self) -> float:
        """Rotation angle in radians of the linear part (positive turns clockwise on screen: rows point down)."""
        return float(np.arctan2(self.matrix[1, 0], self.matrix[0, 0]))

    @property
    def scale(self) -> float:
        """Isotropic scale ``sqrt(|det A|)`` of the linear part ``A`` (> 1: content grew in the moving image)."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:2, :2]))))


def align_images(reference_image: np.ndarray, moving_image: np.ndarray, *, method: AlignMethod = "auto",
                 detector: Literal["sift", "orb"] = "sift", refine: bool = True, upsample_factor: int = 100,
                 residual_threshold: float = 1.0, min_inliers: int = 6, max_trials: int = 1000,
                 seed: int = 0) -> Alignment:
    """Estimate the global motion from ``reference_image`` to ``moving_image`` and undo it.

    Parameters
    ----------
    reference_image, moving_image : ndarray, shape (H, W) or (H, W, 3)
        Grey or RGB (channels last) images of the same shape, any real dtype, finite. The pair is rescaled
        jointly to [0, 1] for estimation, so [-1, 1] generator output and uint8 work alike.
    method : {"auto", "phase", "features", "none"}
        ``"phase"``: phase correlation (translation only). ``"features"``: keypoints + RANSAC affine; raises
        :class:`AlignmentError` with fewer than ``min_inliers`` inliers. ``"auto"``: features, falling back to
        phase correlation when they fail. ``"none"``: the identity (``method == "identity"``), the moving image
        as it is.
    detector : {"sift", "orb"}
        Keypoint detector of the feature path.
    refine : bool
        Polish the RANSAC affine by robust (soft-L1) least squares on the grey intensities.
    upsample_factor : int
        Phase correlation precision is ``1 / upsample_factor`` pixel.
    residual_threshold : float
        RANSAC inlier distance in pixels.
    min_inliers : int
        Fewest RANSAC inliers accepted as an alignment.
    max_trials : int
        RANSAC iterations.
    seed : int
        Seed of RANSAC's sample draws.

    Returns
    -------
    Alignment
        The transform, the moving image warped onto the reference grid, and bookkeeping.

    Raises
    ------
    ValueError
        Images of different shapes, not 2-D grey / 3-channel RGB, smaller than 8x8, or with NaN/inf values.
    AlignmentError
        ``method="features"`` found too few inliers.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    if detector not in ("sift", "orb"):
        raise ValueError(f"detector must be 'sift' or 'orb'; got {detector!r}")
    reference_gray, moving_gray = _gray_pair(reference_image, moving_image)
    if method == "none":
        moving = np.asarray(moving_image, dtype=np.float64)
        return Alignment(matrix=np.eye(3), warped=moving, valid=np.ones(moving.shape[:2], bool), method="identity")
    if reference_gray.std() < 1e-8 or moving_gray.std() < 1e-8:
        return _make_alignment(np.eye(3), moving_image, method="identity")
    if method == "phase":
        return _phase_alignment(reference_gray, moving_gray, moving_image, upsample_factor=upsample_factor)
    try:
        matrix, n_matches, n_inliers = _feature_affine(reference_gray, moving_gray, detector=detector,
                                                       residual_threshold=residual_threshold,
                                                       min_inliers=min_inliers, max_trials=max_trials, seed=seed)
    except AlignmentError:
        if method == "features":
            raise
        return _phase_alignment(reference_gray, moving_gray, moving_image, upsample_factor=upsample_factor)
    refined = False
    if refine:
        polished = _refine_affine(reference_gray, moving_gray, matrix)
        refined = polished is not None
        matrix = polished if refined else matrix
    return _make_alignment(matrix, moving_image, method="features", n_matches=n_matches, n_inliers=n_inliers,
                           refined=refined)


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or np.iscomplexobj(image):
        raise ValueError(f"{name} must hold real numbers; got dtype {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"{name} must have shape (H, W) or (H, W, 3) (channels last); got {image.shape}")
    if min(image.shape[:2]) < _MIN_SIZE:
        raise ValueError(f"{name} must be at least {_MIN_SIZE}x{_MIN_SIZE} pixels; got {image.shape[:2]}")
    n_bad = int(np.size(image) - np.isfinite(image).sum())
    if n_bad:
        raise ValueError(f"{name} contains {n_bad} NaN or infinite values")
    return image


def _gray_pair(reference_image: np.ndarray, moving_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 grey, rescaled jointly to [0, 1] (all zeros if the pair is constant)."""
    reference_image = _check_image(reference_image, "reference_image")
    moving_image = _check_image(moving_image, "moving_image")
    if reference_image.shape != moving_image.shape:
        raise ValueError(f"reference_image {reference_image.shape} and moving_image {moving_image.shape} "
                         "must have the same shape")
    grays = [rgb2gray(im.astype(np.float64)) if im.ndim == 3 else im.astype(np.float64)
             for im in (reference_image, moving_image)]
    low = min(g.min() for g in grays)
    span = max(g.max() for g in grays) - low
    if span <= 0:
        return np.zeros_like(grays[0]), np.zeros_like(grays[1])
    return (grays[0] - low) / span, (grays[1] - low) / span


def _make_alignment(matrix: np.ndarray, moving_image: np.ndarray, *, method: str, n_matches: int = 0,
                    n_inliers: int = 0, refined: bool = False) -> Alignment:
    moving = np.asarray(moving_image, dtype=np.float64)
    rows, cols = moving.shape[:2]
    transform = AffineTransform(matrix=matrix)
    warped = warp(moving, transform, order=3, mode="edge", preserve_range=True)
    grid_rows, grid_cols = np.mgrid[:rows, :cols]
    source = transform(np.column_stack([grid_cols.ravel(), grid_rows.ravel()]))
    tolerance = 1e-6
    valid = ((source[:, 0] >= -tolerance) & (source[:, 0] <= cols - 1 + tolerance)
             & (source[:, 1] >= -tolerance) & (source[:, 1] <= rows - 1 + tolerance)).reshape(rows, cols)
    return Alignment(matrix=np.array(matrix, dtype=np.float64), warped=warped, valid=valid, method=method,
                     n_matches=n_matches, n_inliers=n_inliers, refined=refined)


def _phase_alignment(reference_gray: np.ndarray, moving_gray: np.ndarray, moving_image: np.ndarray, *,
                     upsample_factor: int) -> Alignment:
    taper = window("hann", reference_gray.shape)
    reference = (reference_gray - reference_gray.mean()) * taper
    register = np.zeros(2)  # shift that registers moving onto reference
    for _ in range(1 + _PHASE_PASSES):
        moving = ndi.shift(moving_gray, register, order=3, mode="nearest") if register.any() else moving_gray
        step, _, _ = phase_cross_correlation(reference, (moving - moving.mean()) * taper,
                                             upsample_factor=upsample_factor, normalization=None)
        register = register + step
    d_row, d_col = -register  # the content moved by the opposite of the registering shift
    matrix = np.array([[1.0, 0.0, d_col], [0.0, 1.0, d_row], [0.0, 0.0, 1.0]])
    return _make_alignment(matrix, moving_image, method="phase")


def _detect(image: np.ndarray, detector: str) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (row, col) and descriptors; empty arrays if the detector finds nothing."""
    extractor = feature.SIFT() if detector == "sift" else feature.ORB(n_keypoints=500, fast_threshold=0.05)
    try:
        extractor.detect_and_extract(image)
    except RuntimeError:  # scikit-image raises when an image has no features
        return np.empty((0, 2)), np.empty((0, 0))
    return extractor.keypoints, extractor.descriptors


def _plausible_affine(model: AffineTransform, *_) -> bool:
    """Reject mirrored, collapsed or wildly scaled RANSAC candidates."""
    singular_values = np.linalg.svd(model.params[:2, :2], compute_uv=False)
    return bool(np.linalg.det(model.params[:2, :2]) > 0 and singular_values.min() > 0.25
                and singular_values.max() < 4.0)


def _feature_affine(reference_gray: np.ndarray, moving_gray: np.ndarray, *, detector: str,
                    residual_threshold: float, min_inliers: int, max_trials: int,
                    seed: int) -> tuple[np.ndarray, int, int]:
    reference_points, reference_descriptors = _detect(reference_gray, detector)
    moving_points, moving_descriptors = _detect(moving_gray, detector)
    if len(reference_points) < 3 or len(moving_points) < 3:
        raise AlignmentError(f"too few keypoints ({len(reference_points)} reference, {len(moving_points)} "
                             f"moving) for an affine fit")
    matches = feature.match_descriptors(reference_descriptors, moving_descriptors, cross_check=True,
                                        max_ratio=0.8)
    if len(matches) < max(3, min_inliers):
        raise AlignmentError(f"{len(matches)} descriptor matches; need at least {max(3, min_inliers)}")
    source = reference_points[matches[:, 0]][:, ::-1]  # (row, col) -> (x, y)
    target = moving_points[matches[:, 1]][:, ::-1]
    model, inliers = ransac((source, target), AffineTransform, min_samples=3,
                            residual_threshold=residual_threshold, is_model_valid=_plausible_affine,
                            max_trials=max_trials, rng=seed)
    n_inliers = 0 if inliers is None else int(inliers.sum())
    if model is None or n_inliers < min_inliers:
        raise AlignmentError(f"RANSAC kept {n_inliers} of {len(matches)} matches; need {min_inliers}")
    return model.params, len(matches), n_inliers


def _refine_affine(reference_gray: np.ndarray, moving_gray: np.ndarray, matrix: np.ndarray) -> np.ndarray | None:
    """Robust least-squares affine on intensities, started at ``matrix``; None if it fails or wanders off."""
    rows, cols = reference_gray.shape
    stride = max(1, int(np.ceil(np.sqrt(rows * cols / _REFINE_PIXELS))))
    grid_rows, grid_cols = np.mgrid[:rows:stride, :cols:stride]
    points = np.stack([grid_cols.ravel(), grid_rows.ravel(), np.ones(grid_rows.size)]).astype(np.float64)
    mapped = matrix[:2] @ points
    margin = 2.0
    inside = ((mapped[0] >= margin) & (mapped[0] <= cols - 1 - margin)
              & (mapped[1] >= margin) & (mapped[1] <= rows - 1 - margin))
    if inside.sum() < 64:
        return None
    points, target = points[:, inside], reference_gray[grid_rows.ravel()[inside], grid_cols.ravel()[inside]]
    coefficients = ndi.spline_filter(moving_gray, order=3, mode="nearest")
    gradient_row, gradient_col = np.gradient(moving_gray)

    def sample(image: np.ndarray, params: np.ndarray, *, prefiltered: bool) -> np.ndarray:
        position = params.reshape(2, 3) @ points
        return ndi.map_coordinates(image, [position[1], position[0]], order=3 if prefiltered else 1,
                                   mode="nearest", prefilter=False)

    def residuals(params: np.ndarray) -> np.ndarray:
        return sample(coefficients, params, prefiltered=True) - target

    def jacobian(params: np.ndarray) -> np.ndarray:
        d_col = sample(gradient_col, params, prefiltered=False)
        d_row = sample(gradient_row, params, prefiltered=False)
        return np.concatenate([d_col[:, None] * points.T, d_row[:, None] * points.T], axis=1)

    start = matrix[:2].ravel()
    try:
        result = least_squares(residuals, start, jac=jacobian, loss="soft_l1", f_scale=0.05,
                               x_scale=np.array([0.01, 0.01, 1.0, 0.01, 0.01, 1.0]), max_nfev=100)
    except (ValueError, np.linalg.LinAlgError):
        return None
    refined = np.vstack([result.x.reshape(2, 3), [0.0, 0.0, 1.0]])
    corners = np.array([[0, 0, 1], [cols - 1, 0, 1], [0, rows - 1, 1], [cols - 1, rows - 1, 1]], float).T
    moved = np.abs((refined - matrix)[:2] @ corners).max()
    if not np.isfinite(refined).all() or moved > _MAX_REFINE_SHIFT or not _plausible_affine(
            AffineTransform(matrix=refined)):
        return None
    return refined
