"""LaViSE on the toy classifier's layer4 with a five-image toy probe and a small in-memory space (smoke test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linkviz.dissection import dissect
from linkviz.lavise import (
    SemanticSpace,
    concept_words,
    evaluate_recall,
    explain_units,
    load_explainer,
    train_explainer,
)
from linkviz.worlds.toy import build_toy_probe, toy_label_names

WEIGHTS = Path(__file__).resolve().parents[2] / "linkviz" / "worlds" / "toy" / "weights" / "classifier.safetensors"


@pytest.fixture(scope="module")
def toy():
    from linkviz.models import Classifier
    from linkviz.worlds.toy import TOY_CLASSIFIER_SPEC
    from linkviz.worlds.toy.world import load_classifier_module

    if not WEIGHTS.exists():
        pytest.skip("toy classifier weights not present")
    classifier = Classifier(load_classifier_module(), TOY_CLASSIFIER_SPEC)
    probe = build_toy_probe(1, seed=0)
    words = sorted({w for name in toy_label_names()[1:] for w in concept_words(name)}) + ["unicorn", "piano"]
    space = SemanticSpace(tuple(words), np.random.default_rng(0).normal(size=(len(words), 12)), name="toy words")
    return classifier, probe, space


def test_toy_classifier_layer4(toy, tmp_path):
    classifier, probe, space = toy
    explainer = train_explainer(classifier, "layer4", probe, space, seed=0, epochs=2, progress=False)
    assert explainer.head.in_channels == 256 and explainer.head.embedding_dim == 12
    assert set(explainer.label_words) == {w for name in explainer.concepts for w in concept_words(name)}
    assert "mushroom" in explainer.label_words and any(name.endswith("-c") for name in explainer.concepts)
    assert not any(word.endswith(("-c", "-s")) for word in explainer.label_words)  # Broden suffixes stripped
    units = [0, 7, 100]
    dissection = dissect(classifier, "layer4", probe, batch_size=5, progress=False)
    explanation = explain_units(classifier, explainer, probe, space, units=units, p=3, words_per_image=10,
                                image_max=dissection.image_max, progress=False)
    assert explanation.top_images.shape == (3, 3) and explanation.image_word_ids.shape == (3, 3, 10)
    assert all(len(explanation.words(u)) >= 1 for u in units if explanation.valid[units.index(u)].any())
    result = evaluate_recall(classifier, explanation, probe, dissection, space, s=(5, 10), progress=False)
    evaluated = result.n_images > 0
    assert evaluated.any() and ((result.per_unit[evaluated] >= 0) & (result.per_unit[evaluated] <= 1)).all()
    assert result.recall[5] <= result.recall[10]
    # a saved and reloaded explainer gives the same words
    reloaded = load_explainer(explainer.save(tmp_path / "toy.safetensors"))
    again = explain_units(classifier, reloaded, probe, space, units=units, p=3, words_per_image=10,
                          image_max=dissection.image_max, progress=False)
    np.testing.assert_array_equal(again.image_word_ids, explanation.image_word_ids)
