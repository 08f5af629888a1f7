"""LinkExploring without ipywidgets on the fake world: pages of originals above cycled images, per-example metrics."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from linkviz.controllers import LinkExploring, LinkPageView
from linkviz.linking import evaluate_link
from linkviz.pairs import sample_pairs


@pytest.fixture
def test_pairs(linked):
    return sample_pairs(linked.generator, linked.classifier, classes=[0], samples_per_class=10, seed=1,
                        truncation_psi=1.0, progress=False)


def test_a_page_shows_originals_over_their_cycled_images(identity_linked, test_pairs, axis_labels):
    evaluation = evaluate_link(identity_linked.link, identity_linked.generator, identity_linked.classifier,
                               test_pairs)
    calls = identity_linked.generator.calls
    exploring = LinkExploring(identity_linked, test_pairs, per_page=4, evaluation=evaluation)
    assert identity_linked.generator.calls == calls and len(exploring) == 10  # the evaluation is not recomputed
    page = exploring.compute(8)
    assert identity_linked.generator.calls == calls + 1  # originals and cycled images in one pass
    assert isinstance(page, LinkPageView) and page.first == 8 and page.examples == (8, 9)
    assert page.rows == 2 and page.columns == 2 and page.grid.shape == ((2 * 9 - 1) * 16, (2 * 9 - 1) * 16, 3)
    # ground truth: the grid's tiles are the rendered latents, zoomed 16 times
    originals = identity_linked.render(test_pairs.w[[8, 9]])
    cycled = identity_linked.render(evaluation.w_linked[[8, 9]])
    np.testing.assert_array_equal(page.grid[8, 8], originals[0, 0, 0])
    np.testing.assert_array_equal(page.grid[9 * 16 + 8, 9 * 16 + 8], cycled[1, 0, 0])

    frame = page.to_frame()
    names = np.asarray(identity_linked.class_names)
    # the fake generator is unconditional: its pairs carry no label, so no label column and no label agreement
    assert not evaluation.conditional and "label_agreement" not in evaluation.to_frame()["metric"].tolist()
    assert "label_agreement" not in evaluation.per_example_frame()
    assert frame.columns.tolist() == ["example", "original", "cycled", "w_mse", "perceptual_distance", "pixel_l1"]
    assert frame["example"].tolist() == [8, 9]
    assert frame["cycled"].tolist() == names[evaluation.predicted_cycled[[8, 9]]].tolist()
    np.testing.assert_allclose(frame["w_mse"], evaluation.w_mse[[8, 9]])
    assert "<td>9</td>" in page.table_html and "per-example metrics" in page.table_html
    assert page.caption == "Top: originals G(w); bottom: cycled G(w~)."

    figure = page.figure()
    assert isinstance(figure, Figure)
    assert axis_labels(figure) == (["original", "cycled"], ["example 8", "example 9"])


def test_metrics_summary_and_bad_requests(linked, test_pairs):
    exploring = LinkExploring(linked, test_pairs, per_page=3)
    summary = exploring.metrics_html()
    assert "over 10 test pairs" in summary
    for metric in ("w_mse", "w_cosine", "class_agreement", "perceptual_distance", "pixel_l1"):
        assert metric in summary
    assert exploring.compute(0).examples == (0, 1, 2)
    with pytest.raises(IndexError, match="example 10 out of range"):
        exploring.compute(10)
    with pytest.raises(ValueError, match="per_page must be positive"):
        LinkExploring(linked, test_pairs, per_page=0)
    few = sample_pairs(linked.generator, linked.classifier, classes=[0], samples_per_class=3, seed=2,
                       progress=False)
    with pytest.raises(ValueError, match="evaluation has 10 examples"):
        LinkExploring(linked, few, evaluation=exploring.evaluation)


def test_agreement_is_shown_against_its_baselines(identity_linked, test_pairs):
    exploring = LinkExploring(identity_linked, test_pairs, per_page=3)
    evaluation = exploring.evaluation
    # ground truth: the identity link inverts the fake world exactly, so every cycle agrees
    assert evaluation.class_agreement.all()
    counts = np.bincount(test_pairs.predicted, minlength=3)
    majority = counts.max() / len(test_pairs)
    text = exploring.agreement_text()
    name = identity_linked.class_names[int(counts.argmax())]
    assert f"class agreement 1.00; always answering the majority class ({name}): {majority:.2f}" in text
    assert f"the link fed shuffled r: {evaluation.shuffled_agreement.mean():.2f}" in text
    if majority < 1 and evaluation.shuffled_agreement.mean() < 1:
        assert "beats both by" in text
    assert "always answering the majority class" in exploring.metrics_html()


def test_a_link_that_ignores_r_is_called_chance(linked, test_pairs):
    import dataclasses

    from linkviz.linking import LinearLink

    constant = LinearLink(weight=np.zeros_like(linked.link.weight), bias=linked.link.bias)  # one image for every r
    exploring = LinkExploring(dataclasses.replace(linked, link=constant), test_pairs)
    # every cycled image is the same, so agreement equals the share of one class: never above the majority
    assert "does not beat chance" in exploring.agreement_text()


def test_another_link_is_evaluated_and_named(linked, test_pairs):
    """The fake world's r = relu(4 tanh(w / 4)) is not linear in w, so feature inversion from the ridge latent finds
    the held-out latents more closely than the ridge link alone (its images have the pairs' r)."""
    linear = LinkExploring(linked, test_pairs)
    refined = LinkExploring(linked, test_pairs, link=linked.refined_link(steps=300, step_size=0.05))
    assert refined.evaluation.w_mse.mean() < 0.5 * linear.evaluation.w_mse.mean()
    assert "of the linear link + 300 steps of feature inversion over 10 test pairs" in refined.metrics_html()
    assert "of the linear link over 10 test pairs" in linear.metrics_html()
