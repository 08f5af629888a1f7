"""LinkExplorer driven through its traits on the tiny fake world."""

import io

import numpy as np
import pytest
from PIL import Image

from linkviz.linking import evaluate_link
from linkviz.pairs import sample_pairs
from linkviz.widgets import LinkExplorer


def decoded(image_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB"))


@pytest.fixture
def test_pairs(linked):
    return sample_pairs(linked.generator, linked.classifier, classes=[0], samples_per_class=10, seed=1,
                        truncation_psi=1.0, progress=False)


def test_shows_originals_over_cycled_images_and_the_metrics(linked, test_pairs):
    explorer = LinkExplorer(linked, test_pairs, per_page=4)
    assert decoded(explorer.image.value).shape == ((2 * 9 - 1) * 16, (4 * 9 - 1) * 16, 3)
    for metric in ("w_mse", "w_cosine", "class_agreement", "perceptual_distance", "pixel_l1"):
        assert metric in explorer.metrics.value
    assert "over 10 test pairs" in explorer.metrics.value
    assert explorer.shown.examples == (0, 1, 2, 3)
    names = np.asarray(linked.class_names)
    assert names[explorer.evaluation.predicted_cycled[0]] in explorer.examples_table.value


def test_slider_pages_through_the_examples(linked, test_pairs):
    explorer = LinkExplorer(linked, test_pairs, per_page=4)
    first, calls = explorer.image.value, linked.generator.calls
    explorer.example.value = 8
    assert explorer.worker.wait_idle(5)
    assert linked.generator.calls == calls + 1  # originals and cycled images in one pass
    assert explorer.shown.examples == (8, 9) and explorer.error.value == ""
    assert explorer.image.value != first
    assert decoded(explorer.image.value).shape[1] == (2 * 9 - 1) * 16  # the last page has two examples
    assert "<td>9</td>" in explorer.examples_table.value and "<td>3</td>" not in explorer.examples_table.value


def test_cycled_images_are_the_linked_latents_rendered(identity_linked, test_pairs):
    evaluation = evaluate_link(identity_linked.link, identity_linked.generator, identity_linked.classifier,
                               test_pairs)
    calls = identity_linked.generator.calls
    explorer = LinkExplorer(identity_linked, test_pairs, per_page=1, evaluation=evaluation)
    assert identity_linked.generator.calls == calls + 1  # the given evaluation is not recomputed
    grid = decoded(explorer.image.value).astype(int)
    expected = identity_linked.render(evaluation.w_linked[:1])[0, 0, 0]
    assert np.abs(grid[9 * 16 + 8:-8, 8:-8] - expected).mean() < 8


def test_mismatched_evaluation_and_static_snapshot(linked, test_pairs):
    explorer = LinkExplorer(linked, test_pairs, per_page=2)
    with pytest.raises(ValueError, match="evaluation has 10 examples"):
        LinkExplorer(linked, sample_pairs(linked.generator, linked.classifier, classes=[0], samples_per_class=3,
                                          seed=2, progress=False), evaluation=explorer.evaluation)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].startswith('<img src="data:image/jpeg;base64,')
    assert "Held-out cycle consistency" in bundle["text/html"]


def test_agreement_is_shown_next_to_its_baselines(linked, test_pairs):
    explorer = LinkExplorer(linked, test_pairs, per_page=4)
    evaluation = explorer.evaluation
    majority = np.bincount(test_pairs.predicted).max() / len(test_pairs)  # ground truth from the pairs
    text = explorer.metrics.value
    assert f"class agreement {evaluation.class_agreement.mean():.2f}" in text
    assert f"always answering the majority class ({linked.class_names[evaluation.majority_class]}): " \
           f"{majority:.2f}" in text
    assert f"the link fed shuffled r: {evaluation.shuffled_agreement.mean():.2f}" in text
    assert "majority_agreement" in text and "shuffled_agreement" in text  # the table's baseline rows
