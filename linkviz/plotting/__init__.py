"""Image and figure helpers shared by reports and widgets (numpy/PIL; matplotlib only inside functions)."""

from linkviz.plotting.figures import plot_probability_paths
from linkviz.plotting.images import encode_image, tile_images, to_uint8

__all__ = ["encode_image", "plot_probability_paths", "tile_images", "to_uint8"]
