"""Static galleries (ipyplot): many images grouped by label, for notebooks and exported HTML alike.

A gallery is plain HTML with the images inlined, so it needs no running kernel and no widget JavaScript: it
shows the same in JupyterLab, in VS Code and in a notebook exported to HTML offline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["class_gallery"]


def class_gallery(images: np.ndarray, labels: Sequence[str], *, captions: Sequence[str] | None = None,
                  per_tab: int = 30, image_width: int = 96) -> None:
    """Show images in one tab per label (:func:`ipyplot.plot_class_tabs`), images inlined as base64.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W, 3)
        E.g. generated samples, ``linked.render(w)``.
    labels : sequence of str, length N
        The tab of each image (e.g. its class or its predicted class).
    captions : sequence of str, optional
        A line under each image (e.g. the classifier's probability).
    per_tab : int
        At most this many images per tab.
    image_width : int
        Display width of each image in pixels.
    """
    import ipyplot

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 of shape (N, H, W, 3); got {images.dtype} {images.shape}")
    if len(labels) != len(images) or (captions is not None and len(captions) != len(images)):
        raise ValueError(f"need one label (and caption) per image: {len(images)} images, {len(labels)} labels"
                         + ("" if captions is None else f", {len(captions)} captions"))
    ipyplot.plot_class_tabs(list(images), [str(label) for label in labels],
                            custom_texts=None if captions is None else [str(c) for c in captions],
                            max_imgs_per_tab=per_tab, img_width=image_width, show_url=False, force_b64=True)
