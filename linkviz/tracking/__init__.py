"""Unsupervised tracking: align two images globally, then measure and draw the local motion that is left.

Typical use, with ``reference_image`` the unperturbed and ``moving_image`` the tuned image::

    field = residual_flow(reference_image, moving_image)      # alignment + dense residual flow
    summarize_motion(field, mask=part_mask)                    # magnitude, direction, divergence
    draw_motion_arrows(reference_image, field)                 # uint8 RGB for live views

Many registered pairs at once (images of one generator), with the flow checked where it can be trusted
(structure in the reference image, forward-backward agreement)::

    fields = pair_flows(reference_images, moving_images)       # batched TV-L1, field.reliable set
    draw_motion_arrows(reference_images[0], fields[0])         # arrows only where reliable
"""

from linkviz.tracking.alignment import Alignment, AlignmentError, align_images
from linkviz.tracking.arrows import (
    MotionArrows,
    direction_colors,
    direction_legend,
    draw_motion_arrows,
    strongest_motions,
)
from linkviz.tracking.flow import MotionField, dense_flow, pair_flows, residual_flow
from linkviz.tracking.motion_metrics import (
    MotionSummary,
    PartMotion,
    divergence_map,
    part_motion,
    summarize_motion,
)
from linkviz.tracking.reliability import (
    consistency_mask,
    forward_backward_error,
    reliable_motion,
    structure_mask,
    structure_strength,
)
from linkviz.tracking.tvl1 import tvl1_flow_batch

__all__ = [
    "Alignment",
    "AlignmentError",
    "MotionArrows",
    "MotionField",
    "MotionSummary",
    "PartMotion",
    "align_images",
    "consistency_mask",
    "dense_flow",
    "direction_colors",
    "direction_legend",
    "divergence_map",
    "draw_motion_arrows",
    "forward_backward_error",
    "pair_flows",
    "part_motion",
    "reliable_motion",
    "residual_flow",
    "strongest_motions",
    "structure_mask",
    "structure_strength",
    "summarize_motion",
    "tvl1_flow_batch",
]
