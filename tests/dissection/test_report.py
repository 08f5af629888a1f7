"""Dissection reports: top images (offline and streamed), masks, overlays, the summary table, figures and HTML."""

from __future__ import annotations

import base64
import html
import io
import re
import subprocess
import sys

import fake_dissection
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from fake_dissection import red_model
from PIL import Image

from linkviz.dissection import ProbeDataset, dissect
from linkviz.dissection.report import (
    mask_outline,
    overlay,
    summary_line,
    summary_table,
    unit_images,
)
from linkviz.dissection.top_images import TopImages, top_image_indices


@pytest.fixture
def square_probe() -> ProbeDataset:
    """10 images 16x16: a red 6x6 square labelled "square" on a dim noisy background; scene "beach-s"."""
    return fake_dissection.square_probe()


def brute_force_top(image_max: np.ndarray, k: int) -> np.ndarray:
    keyed = [sorted(range(len(column)), key=lambda i: (-column[i], i))[:k] for column in image_max.T]
    return np.array(keyed)


def test_top_image_indices_rank_by_maximum_with_stable_ties():
    rng = np.random.default_rng(0)
    image_max = rng.integers(0, 4, (30, 7)).astype(np.float32)  # many ties
    image_max[:, 6] = 0.0  # a dead unit: all tied
    for k in (1, 5, 30, 50):
        np.testing.assert_array_equal(top_image_indices(image_max, k), brute_force_top(image_max, min(k, 30)))
    nan = np.array([[np.nan], [1.0], [2.0]])
    assert top_image_indices(nan, 3).tolist() == [[2, 1, 0]]
    with pytest.raises(ValueError, match="k must be positive"):
        top_image_indices(image_max, 0)


def test_streamed_top_images_match_the_offline_ranking_and_keep_the_maps():
    rng = np.random.default_rng(1)
    activations = torch.from_numpy(rng.integers(0, 5, (23, 4, 3, 3)).astype(np.float32))
    top = TopImages(6)
    for start, stop in ((0, 5), (5, 6), (6, 17), (17, 23)):
        top.update(activations[start:stop])
    indices, maps = top.result()
    image_max = activations.flatten(2).amax(2).numpy()
    np.testing.assert_array_equal(indices, top_image_indices(image_max, 6))
    np.testing.assert_array_equal(maps, activations.numpy()[indices, np.arange(4)[:, None]])
    assert maps.shape == (4, 6, 3, 3)


def test_dissect_keeps_top_images_and_the_cache_round_trips_them(square_probe, tmp_path):
    model = red_model()
    fresh = dissect(model, "1", square_probe, quantile=0.1, batch_size=3, top_k=4, progress=False)
    np.testing.assert_array_equal(fresh.top_images, top_image_indices(fresh.image_max, 4))
    with torch.no_grad():
        maps = model(torch.from_numpy(square_probe.images).permute(0, 3, 1, 2).float() / 255).numpy()
    np.testing.assert_array_equal(fresh.top_maps, maps[fresh.top_images, np.arange(3)[:, None]])
    first = dissect(model, "1", square_probe, quantile=0.1, top_k=4, cache_dir=tmp_path, progress=False)
    cached = dissect(model, "1", square_probe, quantile=0.1, top_k=4, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(cached.top_maps, first.top_maps)
    np.testing.assert_array_equal(cached.top_images, fresh.top_images)
    none = dissect(model, "1", square_probe, quantile=0.1, top_k=0, progress=False)
    assert none.top_images is None and none.top_maps is None
    with pytest.raises(ValueError, match="top_k"):
        unit_images(none, square_probe, 0)


def test_unit_masks_are_upsampled_maps_above_threshold(square_probe):
    model = red_model()
    result = dissect(model, "1", square_probe, quantile=0.1, top_k=3, progress=False)
    shown = unit_images(result, square_probe, 0)
    assert shown.images.shape == (3, 16, 16, 3) and shown.masks.shape == (3, 16, 16)
    with torch.no_grad():
        maps = model(torch.from_numpy(square_probe.images[shown.indices]).permute(0, 3, 1, 2).float() / 255)
    upsampled = F.interpolate(maps[:, :1], size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    expected = upsampled.double().numpy() > result.thresholds[0]
    np.testing.assert_array_equal(shown.masks, expected)
    np.testing.assert_array_equal(shown.maxima, result.image_max[shown.indices, 0])
    # the red unit's masks lie on the squares
    squares = square_probe.pixel_labels["object"][shown.indices, 0] == 1
    assert (shown.masks & squares).sum() > 0.8 * shown.masks.sum()
    with pytest.raises(ValueError, match="out of range"):
        unit_images(result, square_probe, 3)


def test_overlay_dims_outside_and_outlines_the_mask():
    image = np.full((1, 8, 8, 3), 200, np.uint8)
    mask = np.zeros((1, 8, 8), bool)
    mask[0, 2:6, 2:6] = True
    outline = mask_outline(mask)
    assert outline.sum() == 12 and not outline[0, 3:5, 3:5].any()
    plain = overlay(image, mask, outline=None)
    assert (plain[~mask] == 40).all() and (plain[mask] == 200).all()
    drawn = overlay(image, mask, outline=(255, 0, 0))
    assert (drawn[outline] == [255, 0, 0]).all() and (drawn[0, 3:5, 3:5] == 200).all()
    assert mask_outline(np.ones((3, 3), bool)).sum() == 8  # the image border bounds a full mask
    with pytest.raises(ValueError, match="masks"):
        overlay(image, mask[0, :4])


def test_summary_table_and_line(square_probe):
    result = dissect(red_model(), "1", square_probe, quantile=0.1, top_k=2, progress=False)
    table = summary_table(result)
    assert list(table.columns) == ["unit", "label", "category", "iou", "is_detector", "threshold", "active_pixels",
                                   "dead", "top_image"]
    assert table.unit.tolist() == [0, 1, 2]
    assert table.top_image.tolist() == result.top_images[:, 0].tolist()
    by_iou = summary_table(result, order="iou")
    assert by_iou.iou.is_monotonic_decreasing
    by_label = summary_table(result, order="label")
    assert by_label.is_detector.tolist() == sorted(by_label.is_detector.tolist(), reverse=True)
    line = summary_line(result)
    assert line == (f"{int(result.is_detector.sum())}/3 units covering {result.unique_detectors()} concepts with "
                    "IoU > 0.04")
    with pytest.raises(ValueError, match="order"):
        summary_table(result, order="size")


def test_bar_graph_has_one_bar_per_concept(square_probe):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linkviz.plotting.dissection_figures import plot_detectors_per_concept

    result = dissect(red_model(), "1", square_probe, quantile=0.1, top_k=2, progress=False)
    figure = plot_detectors_per_concept(result)
    table = result.detectors_per_concept()
    bars = [patch for patch in figure.axes[0].patches]
    assert len(bars) == len(table) and [b.get_height() for b in bars] == table.units.tolist()
    plt.close(figure)


def test_html_report_is_self_contained(square_probe, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from linkviz.plotting.dissection_html import write_dissection_html

    result = dissect(red_model(), "1", square_probe, quantile=0.1, top_k=3, progress=False)
    path = write_dissection_html(result, square_probe, tmp_path / "report.html", title="red <model>", progress=False)
    page = path.read_text(encoding="utf-8")
    assert "red &lt;model&gt;" in page and html.escape(summary_line(result)) in page
    assert len(re.findall(r'class="card( low)?"', page)) == 3
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 4  # bar graph + one strip per unit
    strip = np.asarray(Image.open(io.BytesIO(base64.b64decode(uris[1]))))
    assert strip.shape == (16, 3 * 16 + 2 * 3, 3)
    only = write_dissection_html(result, square_probe, tmp_path / "one.html", units=[0], image_height=32,
                                 progress=False)
    assert len(re.findall(r'class="card( low)?"', only.read_text(encoding="utf-8"))) == 1


def test_report_modules_import_no_display_stack():
    code = ("import sys, linkviz.dissection.report, linkviz.dissection.top_images, linkviz.dissection.robustness, "
            "linkviz.dissection.axis_alignment, linkviz.dissection.concept_pca, "
            "linkviz.plotting.dissection_figures, linkviz.plotting.dissection_html; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'matplotlib', 'ipywidgets', 'IPython'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_summary_table_gains_the_causal_score_of_each_units_own_label():
    from linkviz.dissection.report import with_causal_scores

    table = pd.DataFrame({"unit": [0, 1, 2], "label": ["roof", "cap", "red-c"]})
    scores = pd.DataFrame({"unit": [0, 0, 2], "label": ["roof", "cap", "blue-c"], "score": [0.3, 0.9, 0.1],
                           "ci_low": [0.1, 0.8, 0.0], "ci_high": [0.5, 1.0, 0.2]})
    out = with_causal_scores(table, scores)
    assert out.causal_score.tolist()[0] == 0.3 and np.isnan(out.causal_score[1]) and np.isnan(out.causal_score[2])
    assert out.causal_ci_low.tolist()[0] == 0.1 and out.causal_ci_high.tolist()[0] == 0.5
    with pytest.raises(ValueError, match="more than once"):
        with_causal_scores(table, pd.concat([scores, scores]))
    with pytest.raises(ValueError, match="lack columns"):
        with_causal_scores(table, scores.drop(columns="ci_low"))
