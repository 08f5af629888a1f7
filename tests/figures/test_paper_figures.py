"""The paper figures on small synthetic inputs: their panels, labels, legends and colour bars, and saved PDFs that
are the same on every save."""

from __future__ import annotations

from types import SimpleNamespace

import fake_dissection
import numpy as np
import pandas as pd
import pytest
from fake_population import planted_table
from matplotlib.figure import Figure
from matplotlib.quiver import Quiver
from threadpoolctl import threadpool_limits

from linkviz.controllers import UnitTuning
from linkviz.counterfactual.trajectory import Trajectory
from linkviz.dissection.report import unit_images
from linkviz.figures import (
    ImageGrid,
    counterfactual_figure,
    dissection_summary_figure,
    link_quality_figure,
    population_figure,
    save_figure,
    tuning_strip_figure,
    unit_card_figure,
)
from linkviz.linking.evaluate import LinkEvaluation
from linkviz.linking.similarity import SpaceSimilarity
from linkviz.quantify.population import cluster_label_vectors, label_sparsity, label_vectors, tsne_embedding
from linkviz.tracking import MotionField

RNG = np.random.default_rng(0)


def _ticks(ax) -> tuple[list[str], list[str]]:
    return [t.get_text() for t in ax.get_yticklabels()], [t.get_text() for t in ax.get_xticklabels()]


def _legends(figure: Figure) -> list:
    return [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None] + list(figure.legends) + [
        legend for sub in figure.subfigs for legend in sub.legends]


def _same_pdf_twice(figure: Figure, tmp_path) -> bytes:
    first = save_figure(figure, tmp_path / "first.pdf").read_bytes()
    assert save_figure(figure, tmp_path / "second.pdf").read_bytes() == first
    assert first.startswith(b"%PDF") and b"/Type3" not in first
    return first


def _images(n: int, size: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# --- link quality ---

@pytest.fixture
def evaluation() -> LinkEvaluation:
    n = 10
    return LinkEvaluation(
        w_mse=RNG.random(n), w_cosine=RNG.random(n), class_agreement=np.arange(n) < 8,
        label_agreement=np.arange(n) < 6, perceptual_distance=RNG.random(n), pixel_l1=RNG.random(n),
        labels=np.zeros(n, np.int64), predicted_original=np.zeros(n, np.int64),
        predicted_cycled=np.zeros(n, np.int64), seeds=np.arange(n), w_linked=np.zeros((n, 3), np.float32),
        majority_agreement=np.ones(n, bool), shuffled_agreement=np.arange(n) < 5, majority_class=0)


def test_link_quality_shows_images_metrics_agreement_and_similarity(evaluation, tmp_path):
    similarity = SpaceSimilarity(ari_w=RNG.random(6), ari_r=RNG.random(6), rsa_similarity=RNG.random(6),
                                 rsa_distance=RNG.random(6), classes=np.arange(3), per_class=5, n_init=2)
    figure = link_quality_figure(evaluation, similarity, originals=_images(3), cycled=_images(3), examples=[4, 5, 6])
    assert len(figure.axes) == 1 + 4 + 1 + 1  # images; four metric histograms; agreement; similarity
    assert _ticks(figure.axes[0]) == (["original", "cycled"], ["example 4", "example 5", "example 6"])
    assert [ax.get_xlabel() for ax in figure.axes[1:5]] == ["latent MSE (w, w~)", "latent cosine (w, w~)",
                                                            "perceptual distance", "pixel L1 (I, I~)"]
    agreement = figure.axes[5]
    assert [bar.get_height() for bar in agreement.patches] == pytest.approx([0.8, 0.6])
    baselines = {line.get_label(): line.get_segments()[0][0][1] for line in agreement.collections}
    assert baselines == pytest.approx({"majority class": 1.0, "shuffled r": 0.5})  # the chance levels to beat
    assert figure.axes[6].get_legend() is not None
    assert len(_legends(figure)) == 3  # histograms', agreement baselines' and similarity's
    _same_pdf_twice(figure, tmp_path)


def test_link_quality_from_a_page_table_and_its_grid():
    table = pd.DataFrame({"example": [0, 1], "label": ["red", "red"], "original": ["red", "blue"],
                          "cycled": ["red", "red"], "w_mse": [0.1, 0.2]})
    grid = ImageGrid.from_stack(_images(4).reshape(2, 2, 8, 8, 3), row_labels=("original", "cycled"),
                                column_labels=("a", "b"))
    figure = link_quality_figure(table, images=grid)
    assert len(figure.axes) == 3 and _ticks(figure.axes[0]) == (["original", "cycled"], ["a", "b"])
    assert [bar.get_height() for bar in figure.axes[2].patches] == pytest.approx([0.5, 1.0])
    with pytest.raises(ValueError, match="either images"):
        link_quality_figure(table, images=grid, originals=_images(2), cycled=_images(2))


# --- tuning strips ---

def _field(shift: float) -> MotionField:
    flow = np.zeros((2, 8, 8))
    flow[1, 2:6, 2:6] = shift
    return MotionField(flow=flow, valid=np.ones((8, 8), bool), method="tvl1")


def _view(unit: int, value: float, *, arrows: bool = True, parts: bool = True) -> SimpleNamespace:
    masks = np.zeros((2, 8, 8), np.int64)
    masks[:, 2:6, 2:6] = 1
    return SimpleNamespace(unit=unit, value=value, seeds=(0, 1), original_images=_images(2), tuned_images=_images(2),
                           fields=(_field(value), _field(value)) if arrows else (),
                           original_parts=masks if parts else None, tuned_parts=masks if parts else None)


def test_tuning_strips_one_panel_per_unit_with_arrows_wheel_and_parts(tmp_path):
    views = [_view(3, 2.0), _view(3, -2.0), _view(5, 1.0)]
    figure = tuning_strip_figure(views, part_labels=("background", "disk"))
    assert len(figure.axes) == 2 + 1  # units 3 and 5, the direction wheel
    assert _ticks(figure.axes[0]) == (["linked", "value -2", "flow -2", "value 2", "flow 2"], ["seed 0", "seed 1"])
    assert _ticks(figure.axes[1])[0] == ["linked", "tuned", "flow"]
    assert [ax.get_title(loc="left") for ax in figure.axes[:2]] == ["unit 3", "unit 5 = 1"]
    assert figure.axes[2].get_title() == "arrow direction"
    quivers = [c for c in figure.axes[0].collections if isinstance(c, Quiver)]
    assert len(quivers) == 4  # one per flow tile (2 values x 2 seeds)
    assert np.sign(quivers[0].U).tolist() == [-1.0] * len(quivers[0].U)  # value -2 moves left
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["disk"] and legend.get_title().get_text() == "parts"
    _same_pdf_twice(figure, tmp_path)


def test_tuning_strip_without_overlays_has_no_wheel_and_no_legend():
    figure = tuning_strip_figure(_view(0, 1.0, arrows=False, parts=False), title="unit 0 = 1")
    assert len(figure.axes) == 1 and not figure.legends and figure.get_suptitle() == "unit 0 = 1"
    assert _ticks(figure.axes[0]) == (["linked", "tuned"], ["seed 0", "seed 1"])
    with pytest.raises(ValueError, match="different seeds"):
        tuning_strip_figure([_view(0, 1.0), SimpleNamespace(**{**vars(_view(0, 2.0)), "seeds": (0, 2)})])


def test_a_tuning_view_draws_its_strip(identity_linked):
    def green_parts(images):
        return (np.asarray(images)[..., 1] > 127).astype(np.int64)

    tuning = UnitTuning(identity_linked, segmenter=green_parts)
    figure = tuning.compute(1, 8.0, (0, 1), arrows=True, parts=True).figure()
    assert figure.get_suptitle() == "unit 1 = 8" and len(figure.axes) == 2  # the strip and the wheel
    assert _ticks(figure.axes[0]) == (["linked", "tuned", "flow"], ["seed 0", "seed 1"])
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["part 1"]


# --- counterfactuals ---

@pytest.fixture
def trajectory() -> Trajectory:
    n, a = 2, 5
    logits = np.stack([np.linspace(2, -2, a), np.zeros(a), np.linspace(-2, 2, a)], axis=-1)[None].repeat(n, 0)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    zeros = np.zeros((n, a, 3), np.float32)
    return Trajectory(alphas=np.linspace(0, 1, a), r=zeros, w=zeros, images=_images(n * a).reshape(n, a, 8, 8, 3),
                      probabilities=probabilities.astype(np.float32), r_pca=zeros[..., :2], w_pca=zeros[..., :2],
                      class_names=("red", "green", "blue"))


def test_counterfactual_shows_the_path_and_the_probabilities(trajectory, tmp_path):
    figure = counterfactual_figure(trajectory, title="red → blue")
    assert len(figure.axes) == 2 and figure.get_suptitle() == "red → blue"
    assert _ticks(figure.axes[0]) == (["example 0", "example 1"], [f"alpha = {a:.2f}" for a in trajectory.alphas])
    plot = figure.axes[1]
    assert plot.get_ylabel() == "class probability" and plot.get_xlabel().startswith("alpha")
    assert [t.get_text() for t in plot.get_legend().get_texts()] == ["red (origin)", "green", "blue (target)"]
    _same_pdf_twice(figure, tmp_path)


def test_counterfactual_with_chosen_points_marks_them(trajectory):
    figure = counterfactual_figure(trajectory, examples=[1], steps=[0, 3], column_labels=["start", "here"])
    assert _ticks(figure.axes[0]) == (["example 1"], ["start", "here"])
    marked = [line.get_xdata()[0] for line in figure.axes[1].lines if line.get_linestyle() == ":"]
    assert marked == pytest.approx([0.0, 0.75])
    with pytest.raises(IndexError, match="steps"):
        counterfactual_figure(trajectory, steps=[5])


def test_counterfactual_with_examples_as_columns_puts_before_and_after_in_rows_and_the_plot_below(trajectory):
    figure = counterfactual_figure(trajectory, steps=[0, 4], column_labels=["before", "after"],
                                   row_labels=["face a", "face b"], examples_as="columns")
    images, plot = figure.axes
    assert _ticks(images) == (["before", "after"], ["face a", "face b"])
    assert plot.get_position().y1 < images.get_position().y0  # the probabilities sit below the images
    assert plot.get_position().width > images.get_position().width * 0.8
    with pytest.raises(ValueError, match="examples_as"):
        counterfactual_figure(trajectory, examples_as="diagonal")


# --- population ---

def test_population_has_sparsity_tsne_and_the_cluster_map(tmp_path):
    vectors = label_vectors(planted_table(np.arange(100, 109)))
    with threadpool_limits(limits=1):
        embedding = tsne_embedding(vectors, seed=0, perplexity=2, max_iter=250)
    clustering = cluster_label_vectors(vectors, n_clusters=3)
    figure = population_figure(vectors, label_sparsity(vectors), embedding, clustering, selected=104)
    sparsity, tsne, _, _, heat, bar = figure.axes
    assert len(figure.axes) == 6 and sparsity.get_legend() and tsne.get_legend()
    assert sorted(int(unit) for unit in _ticks(heat)[0]) == list(range(100, 109))
    assert bar.get_ylabel().startswith("mean change")  # the colour bar
    assert "unit 104" in [t.get_text() for t in tsne.texts]
    concept = pd.DataFrame({"unit": [100, 103], "effect": [1.0, 0.9], "ci_low": [0.8, 0.7], "ci_high": [1.2, 1.1],
                            "label": "ear", "metric": "area"})
    with_concept = population_figure(vectors, label_sparsity(vectors), embedding, clustering, concept=concept)
    assert len(with_concept.axes) == 7 and _ticks(with_concept.axes[-1])[0] == ["unit 100", "unit 103"]
    _same_pdf_twice(figure, tmp_path)


# --- dissection ---

@pytest.fixture(scope="module")
def colour_world():
    return fake_dissection.colour_world()


def test_dissection_summary_has_the_bar_graph_and_the_iou_histogram(colour_world, tmp_path):
    result, _ = colour_world
    figure = dissection_summary_figure(result)
    bars, histogram = figure.axes
    assert sorted(_ticks(bars)[1]) == ["blue", "green", "red"] and bars.get_legend() is not None
    assert "detector (IoU > 0.04)" in [t.get_text() for t in histogram.get_legend().get_texts()]
    assert figure.get_suptitle().startswith(f"{result.layer}: 3/3 units")
    _same_pdf_twice(figure, tmp_path)


def test_unit_card_shows_images_and_the_three_methods(colour_world, tmp_path):
    result, probe = colour_world
    words = pd.DataFrame({"rank": [1, 2], "word": ["red", "sky"], "votes": [2.0, 1.0]})
    shown = unit_images(result, probe, 0, k=2)
    figure = unit_card_figure(shown, unit=0, label="red-c", category="color", iou=0.5, words=words, effect=0.52,
                              effect_rank=1, n_units=3, layer="2")
    images, iou, votes, linking = figure.axes
    assert figure.get_suptitle() == "unit 0: red" and len(figure.axes) == 4
    assert _ticks(images) == (["unit 0"], [f"image {i}" for i in shown.indices])
    assert iou.get_legend() is not None and "detector" in iou.get_title(loc="left")
    assert _ticks(votes)[0] == ["red", "sky"] and votes.get_legend() is not None
    assert "effect size 0.52" in linking.texts[0].get_text() and "rank 1 of 3" in linking.texts[0].get_text()
    _same_pdf_twice(figure, tmp_path)
    unexplained = unit_card_figure(shown, unit=0, label="none", iou=0.01)
    assert "no explanation given" in unexplained.axes[2].texts[0].get_text()
