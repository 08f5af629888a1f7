"""Dense motion between two images: the residual flow left after global alignment.

The flow is the displacement of image content from the reference image to the moving image, sampled on the
reference grid: content at reference pixel ``x`` is found at ``x + flow[:, x]`` in the (aligned) moving image.
Components are ``(row, col)`` like :func:`skimage.registration.optical_flow_tvl1`, which computes it (or
``optical_flow_ilk``).

Angles (:attr:`MotionField.angle`) are screen angles: 0 points right (+col), pi/2 points up (-row), in
(-pi, pi].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from skimage.registration import optical_flow_ilk, optical_flow_tvl1

from linkviz.tracking.alignment import Alignment, AlignMethod, _gray_pair, align_images
from linkviz.tracking.reliability import FB_ABSOLUTE, FB_RELATIVE, MIN_GRADIENT, reliable_motion
from linkviz.tracking.tvl1 import tvl1_flow_batch

__all__ = ["FlowMethod", "MotionField", "dense_flow", "pair_flows", "residual_flow"]

FlowMethod = Literal["tvl1", "ilk"]
_FLOW_METHODS: tuple[str, ...] = ("tvl1", "ilk")


@dataclass(frozen=True, eq=False)
class MotionField:
    """A dense displacement field on the reference grid.

    Attributes
    ----------
    flow : ndarray, shape (2, H, W), float64
        ``(row, col)`` displacement in pixels from the reference image to the (aligned) moving image. Zero where
        ``valid`` is False; never NaN.
    valid : ndarray, shape (H, W), bool
        Pixels where the flow is defined (the aligned moving image covers them).
    method : {"tvl1", "ilk"}
        Optical-flow estimator.
    alignment : Alignment or None
        The global alignment removed before the flow was computed (None: the images were used as given).
    reliable : ndarray, shape (H, W), bool, or None
        Pixels whose flow passed the reliability checks (:func:`linkviz.tracking.reliable_motion`: structure in
        the reference image, forward-backward agreement); None when unchecked. Arrows and quivers
        (:func:`linkviz.tracking.strongest_motions`) keep to these pixels.
    """

    flow: np.ndarray
    valid: np.ndarray
    method: str
    alignment: Alignment | None = None
    reliable: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the field."""
        return self.flow.shape[1], self.flow.shape[2]

    @property
    def trusted(self) -> np.ndarray:
        """Pixels that are valid and (where checked) reliable, shape (H, W), bool."""
        return self.valid if self.reliable is None else self.valid & self.reliable

    @property
    def magnitude(self) -> np.ndarray:
        """Displacement length in pixels, shape (H, W)."""
        return np.hypot(self.flow[0], self.flow[1])

    @property
    def angle(self) -> np.ndarray:
        """Screen direction in radians, shape (H, W): 0 right, pi/2 up, in (-pi, pi]; 0 where there is no motion."""
        return np.arctan2(0.0 - self.flow[0], self.flow[1])  # 0.0 - x: no -0.0, so left is +pi

    def total_flow(self) -> np.ndarray:
        """Global alignment and residual flow composed, shape (2, H, W), ``(row, col)``.

        Content at reference pixel ``x`` moved to ``T(x + flow(x))`` in the moving image, with ``T`` the
        alignment's forward transform; this returns ``T(x + flow(x)) - x``.
        """
        if self.alignment is None:
            return self.flow.copy()
        rows, cols = np.mgrid[:self.shape[0], :self.shape[1]].astype(np.float64)
        matrix = self.alignment.matrix
        x, y = cols + self.flow[1], rows + self.flow[0]
        moved_col = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
        moved_row = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
        return np.stack([moved_row - rows, moved_col - cols])


def dense_flow(reference_image: np.ndarray, moving_image: np.ndarray, *, method: FlowMethod = "tvl1",
               valid: np.ndarray | None = None, attachment: float = 15.0, radius: int = 7,
               num_warp: int | None = None, prefilter: bool = False) -> MotionField:
    """Dense optical flow from ``reference_image`` to ``moving_image`` (no alignment).

    Parameters
    ----------
    reference_image, moving_image : ndarray, shape (H, W) or (H, W, 3)
        Same-shape grey or RGB (channels last) images, finite; rescaled jointly to [0, 1] grey.
    method : {"tvl1", "ilk"}
        TV-L1 (:func:`~skimage.registration.optical_flow_tvl1`, smooth, accurate) or iterative Lucas-Kanade
        (:func:`~skimage.registration.optical_flow_ilk`, faster).
    valid : ndarray, shape (H, W), bool, optional
        Pixels where the pair is comparable; the flow is set to zero elsewhere. Default: everywhere.
    attachment : float
        TV-L1 data weight (larger: less smoothing).
    radius : int
        ILK window radius in pixels.
    num_warp : int, optional
        Warps per pyramid level; default scikit-image's (5 for tvl1, 10 for ilk).
    prefilter : bool
        Median-filter the flow between warps.

    Returns
    -------
    MotionField
        Flow with NaN/inf (flat, textureless windows of ILK) replaced by zero.
    """
    if method not in _FLOW_METHODS:
        raise ValueError(f"method must be one of {_FLOW_METHODS}; got {method!r}")
    reference_gray, moving_gray = _gray_pair(reference_image, moving_image)
    if valid is None:
        valid = np.ones(reference_gray.shape, dtype=bool)
    else:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != reference_gray.shape:
            raise ValueError(f"valid has shape {valid.shape}; expected {reference_gray.shape}")
    if method == "tvl1":
        options = {} if num_warp is None else {"num_warp": num_warp}
        flow = optical_flow_tvl1(reference_gray, moving_gray, attachment=attachment, prefilter=prefilter,
                                 **options)
    else:
        options = {} if num_warp is None else {"num_warp": num_warp}
        flow = optical_flow_ilk(reference_gray, moving_gray, radius=radius, prefilter=prefilter, **options)
    flow = np.nan_to_num(flow.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    flow[:, ~valid] = 0.0
    return MotionField(flow=flow, valid=valid, method=method)


def residual_flow(reference_image: np.ndarray, moving_image: np.ndarray, *, alignment: Alignment | None = None,
                  align_method: AlignMethod = "auto", method: FlowMethod = "tvl1", attachment: float = 15.0,
                  radius: int = 7, num_warp: int | None = None, prefilter: bool = False,
                  seed: int = 0) -> MotionField:
    """Align globally, then the dense flow of the motion that is left (the local changes).

    Parameters
    ----------
    reference_image, moving_image : ndarray, shape (H, W) or (H, W, 3)
        E.g. the unperturbed and the tuned image; same shape, channels last.
    alignment : Alignment, optional
        A precomputed alignment of this pair; by default :func:`align_images` with ``align_method``.
    align_method : {"auto", "phase", "features", "none"}
        Estimator for the global alignment when ``alignment`` is not given.
    method, attachment, radius, num_warp, prefilter
        As in :func:`dense_flow`.
    seed : int
        RANSAC seed of the alignment.

    Returns
    -------
    MotionField
        Residual flow on the reference grid (zero outside the aligned overlap), with the alignment attached;
        :meth:`MotionField.total_flow` adds the global part back.
    """
    if alignment is None:
        alignment = align_images(reference_image, moving_image, method=align_method, seed=seed)
    elif alignment.warped.shape != np.shape(moving_image):
        raise ValueError(f"alignment was computed for images of shape {alignment.warped.shape}; "
                         f"got {np.shape(moving_image)}")
    field = dense_flow(reference_image, alignment.warped, method=method, valid=alignment.valid,
                       attachment=attachment, radius=radius, num_warp=num_warp, prefilter=prefilter)
    return MotionField(flow=field.flow, valid=field.valid, method=method, alignment=alignment)


def pair_flows(reference_images: np.ndarray, moving_images: np.ndarray, *, align_method: AlignMethod = "none",
               reliability: bool = True, attachment: float = 15.0, num_warp: int = 5, num_iter: int = 10,
               min_gradient: float = MIN_GRADIENT, fb_relative: float = FB_RELATIVE, fb_absolute: float = FB_ABSOLUTE,
               value_range: tuple[float, float] | None = None) -> tuple[MotionField, ...]:
    """TV-L1 flows of many image pairs in one batch (:func:`~linkviz.tracking.tvl1.tvl1_flow_batch`), checked.

    Made for pairs that are already registered, such as two images of one generator whose latents differ a
    little (``align_method="none"``, the default); a global alignment per pair can be removed first.

    Parameters
    ----------
    reference_images, moving_images : ndarray, shape (N, H, W) or (N, H, W, 3)
        Pair ``i`` is ``(reference_images[i], moving_images[i])``; each pair is rescaled jointly to [0, 1] grey.
    align_method : {"none", "phase", "features", "auto"}
        Global alignment removed from each pair before the flow (:func:`align_images`); "none" keeps the pixels.
    reliability : bool
        Also solve the backward flows (in the same batch) and set each field's ``reliable`` mask with
        :func:`~linkviz.tracking.reliable_motion` (structure of the reference, forward-backward agreement).
    attachment, num_warp, num_iter
        TV-L1 options as in :func:`skimage.registration.optical_flow_tvl1`.
    min_gradient, fb_relative, fb_absolute
        Thresholds of :func:`~linkviz.tracking.reliable_motion` (``min_gradient``, ``relative``, ``absolute``).
    value_range : (float, float), optional
        Black and white levels of float images for the structure test; default (0, 1) (uint8: 0-255).

    Returns
    -------
    tuple of MotionField
        One per pair, ``method="tvl1"``, with the alignment (None for "none") and the reliable mask (None
        without ``reliability``); flow zero outside the aligned overlap.
    """
    reference_images, moving_images = np.asarray(reference_images), np.asarray(moving_images)
    if reference_images.shape != moving_images.shape or reference_images.ndim not in (3, 4):
        raise ValueError(f"reference_images and moving_images must have one shape (N, H, W) or (N, H, W, 3); got "
                         f"{reference_images.shape} and {moving_images.shape}")
    alignments: list[Alignment | None] = [None] * len(reference_images)
    if align_method != "none":
        alignments = [align_images(reference, moving, method=align_method)
                      for reference, moving in zip(reference_images, moving_images)]
        moving_images = np.stack([alignment.warped for alignment in alignments])
    grays = [_gray_pair(reference, moving) for reference, moving in zip(reference_images, moving_images)]
    references, movings = np.stack([g[0] for g in grays]), np.stack([g[1] for g in grays])
    if reliability:
        references, movings = np.concatenate([references, movings]), np.concatenate([movings, references])
    flows = tvl1_flow_batch(references, movings, attachment=attachment, num_warp=num_warp,
                            num_iter=num_iter).astype(np.float64)
    fields = []
    for index, (image, alignment) in enumerate(zip(reference_images, alignments)):
        flow = flows[index]
        valid = np.ones(flow.shape[1:], bool) if alignment is None else alignment.valid
        flow[:, ~valid] = 0.0
        reliable = None
        if reliability:
            reliable = reliable_motion(image, flow, flows[len(reference_images) + index], min_gradient=min_gradient,
                                       relative=fb_relative, absolute=fb_absolute, value_range=value_range) & valid
        fields.append(MotionField(flow=flow, valid=valid, method="tvl1", alignment=alignment, reliable=reliable))
    return tuple(fields)
