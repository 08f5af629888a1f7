"""UnitTuner's flow-arrow and part overlays, on a world whose unit 0 moves a bright blob over a fixed texture."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage as ndi
from skimage.color import rgb2hsv

from linkviz.linking import LinearLink, LinkedModel
from linkviz.pairs import PairSet
from linkviz.plotting.overlays import label_colors
from linkviz.tuning import UnitStats
from linkviz.widgets import UnitTuner

SIZE = 32
ZOOM = 128 // SIZE


class BlobGenerator:
    """Unconditional, w_dim 3: a bright Gaussian blob at (16 + 3 w1, 16 + 3 w0) (row, col) over a fixed texture."""

    num_ws, w_dim, z_dim, c_dim, img_resolution = 2, 3, 3, 0, SIZE

    def __init__(self) -> None:
        texture = ndi.gaussian_filter(np.random.default_rng(0).normal(size=(SIZE, SIZE)), 1.5)
        self.texture = torch.as_tensor(0.2 * (texture - texture.mean()) / texture.std(), dtype=torch.float32)
        self.calls = 0

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        w = ws[:, 0]
        rows, cols = torch.meshgrid(torch.arange(SIZE, dtype=torch.float32),
                                    torch.arange(SIZE, dtype=torch.float32), indexing="ij")
        centre_rows, centre_cols = 16 + 3 * w[:, 1, None, None], 16 + 3 * w[:, 0, None, None]
        blob = torch.exp(-((rows - centre_rows) ** 2 + (cols - centre_cols) ** 2) / (2 * 3.0**2))
        grey = torch.clamp(self.texture + 1.2 * blob - 0.36, -1, 1)
        return grey[:, None].repeat(1, 3, 1, 1)


@pytest.fixture
def blob_linked() -> LinkedModel:
    """Identity link (w = r); base blobs at the centre, unit 0 observed from -1.5 to 1.5."""
    r = np.array([[0, 0, 0], [0, 0.5, 0], [-1.5, 0, 0], [1.5, 0, 0], [0, -0.5, 0]], np.float32)
    n = len(r)
    pairs = PairSet(w=r.copy(), r=r, labels=np.zeros(n, np.int64), predicted=np.zeros(n, np.int64),
                    accepted=np.ones(n, bool), seeds=np.arange(n))
    link = LinearLink(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, np.float32))
    return LinkedModel(classifier=None, generator=BlobGenerator(), link=link, stats=UnitStats.from_activations(r),
                       pairs=pairs, class_names=("blob",))


def decoded(image_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB"))


def bright_parts(images: np.ndarray) -> np.ndarray:
    """Part 1 where the image is bright (the blob), else background 0."""
    return (np.asarray(images)[..., 0] > 200).astype(np.int64)


def test_overlays_are_off_by_default_and_parts_need_a_segmenter(blob_linked):
    tuner = UnitTuner(blob_linked, seeds=(0, 1))
    assert not tuner.arrows.value and not tuner.parts.value
    assert tuner.parts.disabled and "no segmenter" in tuner.parts.tooltip
    assert decoded(tuner.image.value).shape[0] == ZOOM * (2 * (SIZE + 1) - 1)  # two rows
    with pytest.raises(ValueError, match="needs a segmenter"):
        UnitTuner(blob_linked, parts=True)
    with pytest.raises(ValueError, match="segment_from"):
        UnitTuner(blob_linked, segmenter=bright_parts, segment_from="latents")


def test_flow_arrows_row_shows_the_blob_moving_right(blob_linked):
    tuner = UnitTuner(blob_linked, seeds=(0, 1), unit=0)
    calls = blob_linked.generator.calls
    tuner.value.value = 1.5  # the blobs of seeds 0 and 1 move 4.5 px to the right
    tuner.arrows.value = True
    assert tuner.worker.wait_idle(30)
    assert tuner.error.value == "" and tuner.shown.arrows and not tuner.shown.parts
    assert blob_linked.generator.calls <= calls + 2  # at most one pass per request; originals are cached
    grid = decoded(tuner.image.value)
    assert grid.shape == (ZOOM * (3 * (SIZE + 1) - 1), ZOOM * (2 * (SIZE + 1) - 1), 3)
    blob = np.zeros((SIZE, SIZE), bool)
    blob[10:24, 14:26] = True
    for field in tuner.shown.fields:
        rightwards, downwards = field.flow[1][blob].mean(), field.flow[0][blob].mean()
        assert rightwards > 0.5 and abs(downwards) < rightwards / 3
    arrows = grid[2 * ZOOM * (SIZE + 1):, :ZOOM * SIZE]  # third row, first column
    hsv = rgb2hsv(arrows)
    drawn = (hsv[..., 1] > 0.15) & (hsv[..., 2] > 0.5)  # coloured and bright: arrows on the darkened grey image
    assert drawn.sum() > 20
    hue = hsv[..., 0][drawn]
    assert np.mean((hue < 0.1) | (hue > 0.9)) > 0.6  # red: pointing right
    assert "Last row: motion" in tuner.label.value
    tuner.arrows.value = False
    assert tuner.worker.wait_idle(30) and not tuner.shown.arrows and tuner.shown.fields == ()
    assert decoded(tuner.image.value).shape[0] == ZOOM * (2 * (SIZE + 1) - 1)


def test_parts_from_images_are_tinted_over_originals_and_tuned_images(blob_linked):
    seen = []

    def segmenter(images):
        seen.append(images.shape)
        return torch.as_tensor(bright_parts(images))  # a Tensor is accepted too

    tuner = UnitTuner(blob_linked, seeds=(0, 2), unit=0, segmenter=segmenter, part_labels=("background", "blob"))
    assert not tuner.parts.disabled and seen == []  # nothing segmented while the toggle is off
    tuner.parts.value = True
    assert tuner.worker.wait_idle(30) and tuner.error.value == ""
    view = tuner.shown
    assert view.parts and seen == [(2, SIZE, SIZE, 3), (2, SIZE, SIZE, 3)]  # originals once, tuned once
    assert view.original_parts.shape == view.tuned_parts.shape == (2, SIZE, SIZE)
    assert "blob" in tuner.label.value and label_colors(2)[1].tolist() == [31, 119, 180]
    grid = decoded(tuner.image.value).astype(int)
    tuned_blob = grid[ZOOM * (SIZE + 1) + ZOOM * 16 + 2, ZOOM * 16 + 2]  # tuned row, seed 0, blob centre
    assert tuned_blob[2] > tuned_blob[0] + 40  # tinted blue (the first part colour), up to JPEG
    assert (view.original_parts[0, :4, :4] == 0).all()
    background = grid[ZOOM * 2, ZOOM * 2]
    assert abs(background[2] - background[0]) < 25  # background untinted (grey texture)
    tuner.value.value = float(blob_linked.stats.max[0])
    assert tuner.worker.wait_idle(30)
    assert len(seen) == 3  # the originals' parts are cached: only the tuned images are segmented again


def test_parts_from_latents(blob_linked):
    shapes = []

    def segmenter(ws):
        shapes.append(tuple(ws.shape))
        w = ws[:, 0].numpy()
        masks = np.zeros((len(w), 8, 8), np.int64)  # a coarse mask: the quarter the blob is in
        for k, (col, row, _) in enumerate(w):
            masks[k, 4 if row > 0 else 0:, 4 if col > 0 else 0:] = 1
        return masks

    tuner = UnitTuner(blob_linked, seeds=(0,), unit=0, segmenter=segmenter, segment_from="ws", parts=True)
    assert shapes == [(1, 2, 3), (1, 2, 3)] and tuner.shown.tuned_parts.shape == (1, 8, 8)
    assert decoded(tuner.image.value).shape == (ZOOM * (2 * (SIZE + 1) - 1), ZOOM * SIZE, 3)

    def broken(ws):
        return np.zeros((len(ws), 8), np.float32)

    tuner = UnitTuner(blob_linked, seeds=(0,), unit=0, segmenter=broken, segment_from="ws")
    tuner.parts.value = True
    assert tuner.worker.wait_idle(30)
    assert "integer part masks" in tuner.error.value and not tuner.shown.parts
