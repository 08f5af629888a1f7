"""Unsupervised tracking: align two images globally, then measure and draw the local motion that is left.

Typical use, with ``reference_image`` the unperturbed and ``moving_image`` the tuned image::

    field = residual_flow(reference_image, moving_image)      # alignment + dense residual flow
    summarize_motion(field, mask=part_mask)                    # magnitude, direction, divergence
    draw_motion_arrows(reference_image, field)                 # uint8 RGB for live views
"""

from linkviz.tracking.alignment import Alignment, AlignmentError, align_images
from linkviz.tracking.arrows import (
    MotionArrows,
    direction_colors,
    draw_motion_arrows,
    strongest_motions,
)
from linkviz.tracking.flow import MotionField, dense_flow, residual_flow
from linkviz.tracking.motion_metrics import (
    MotionSummary,
    PartMotion,
    divergence_map,
    part_motion,
    summarize_motion,
)

__all__ = [
    "Alignment",
    "AlignmentError",
    "MotionArrows",
    "MotionField",
    "MotionSummary",
    "PartMotion",
    "align_images",
    "dense_flow",
    "direction_colors",
    "divergence_map",
    "draw_motion_arrows",
    "part_motion",
    "residual_flow",
    "strongest_motions",
    "summarize_motion",
]
