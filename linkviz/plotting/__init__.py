"""Image and figure helpers shared by reports and widgets (numpy/PIL; matplotlib only inside functions)."""

from linkviz.images import encode_image, save_png, tile_images, to_uint8
from linkviz.plotting.dissection_figures import (
    plot_axis_alignment,
    plot_concept_loadings,
    plot_detectors_per_concept,
    plot_robustness,
)
from linkviz.plotting.dissection_html import dissection_html, write_dissection_html
from linkviz.plotting.figures import plot_probability_paths
from linkviz.plotting.grid_figure import draw_image_grid, grid_figure
from linkviz.plotting.motion import plot_motion_quiver
from linkviz.plotting.overlays import draw_superpixels, label_colors, overlay_parts, plot_parts
from linkviz.plotting.paper_style import PAPER_RC, paper_figure, paper_style, save_figure
from linkviz.plotting.population import plot_clustermap, plot_embedding, plot_label_sparsity

__all__ = [
    "PAPER_RC",
    "dissection_html",
    "draw_image_grid",
    "draw_superpixels",
    "encode_image",
    "grid_figure",
    "label_colors",
    "overlay_parts",
    "paper_figure",
    "paper_style",
    "plot_axis_alignment",
    "plot_clustermap",
    "plot_concept_loadings",
    "plot_detectors_per_concept",
    "plot_embedding",
    "plot_label_sparsity",
    "plot_motion_quiver",
    "plot_parts",
    "plot_probability_paths",
    "plot_robustness",
    "save_figure",
    "save_png",
    "tile_images",
    "to_uint8",
    "write_dissection_html",
]
