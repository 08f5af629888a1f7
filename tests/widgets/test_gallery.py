"""class_gallery: a static ipyplot gallery with one tab per label and every image inlined."""

from __future__ import annotations

import numpy as np
import pytest

from linkviz.widgets import class_gallery


def test_one_tab_per_label_with_inlined_images(monkeypatch):
    import ipyplot._html_helpers

    shown = []  # what ipyplot hands to IPython's display (outside a kernel it would only print a repr)
    monkeypatch.setattr(ipyplot._html_helpers, "display", lambda obj: shown.append(obj.data))
    images = np.zeros((5, 8, 8, 3), np.uint8)
    images[:, :, :, 0] = np.arange(5)[:, None, None] * 50
    class_gallery(images, ["cap", "cap", "stem", "stem", "stem"], captions=[f"p={i}" for i in range(5)])
    page = "".join(shown)
    assert page.count("data:image/png;base64,") >= 5  # every image inlined (plus the 'show all' tab)
    assert ">cap<" in page and ">stem<" in page and "p=4" in page


def test_rejects_mismatched_labels_and_float_images():
    images = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="2 images, 1 labels"):
        class_gallery(images, ["a"])
    with pytest.raises(ValueError, match="must be uint8"):
        class_gallery(images.astype(float), ["a", "b"])
