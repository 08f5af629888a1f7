"""SemanticSpace: concept names to words, out-of-vocabulary errors, batched nearest-word search."""

from __future__ import annotations

import numpy as np
import pytest

from linkviz.lavise import OutOfVocabularyError, SemanticSpace, concept_words

WORDS = ("sky", "blue", "dog", "cat", "zero")
VECTORS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.6, 0.8], [0.0, 0.0, 0.0]])


@pytest.fixture
def space() -> SemanticSpace:
    return SemanticSpace(WORDS, VECTORS * np.array([[2.0], [1.0], [3.0], [1.0], [1.0]]), name="tiny")


def test_concept_words():
    assert concept_words("red-c") == ("red",)  # Broden colour suffix
    assert concept_words("kitchen-s") == ("kitchen",)  # Broden scene suffix
    assert concept_words("Sky-Blue") == ("sky", "blue")
    assert concept_words("traffic light") == ("traffic", "light")
    assert concept_words("street_sign") == ("street", "sign")
    assert concept_words("-s") == ("s",)  # a bare suffix is a name, not a suffix
    assert concept_words("hair drier", name_mapping={"hair drier": "hairdryer"}) == ("hairdryer",)
    assert concept_words("tv", name_mapping={"tv": ["Television", "set"]}) == ("television", "set")
    with pytest.raises(ValueError, match="gives no words"):
        concept_words("--")


def test_word_ids_embed_and_out_of_vocabulary(space):
    assert space.word_ids(["sky-blue", "dog"]) == [(0, 1), (2,)]
    embedded = space.embed(["sky-blue", "dog"])
    # the mean of unit vectors, whatever the stored norms
    np.testing.assert_allclose(embedded, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], atol=1e-7)
    with pytest.raises(OutOfVocabularyError, match=r"'sky-grey' -> \['grey'\]") as error:
        space.word_ids(["sky-grey", "dog", "unicorn-c"])
    assert error.value.missing == {"sky-grey": ("grey",), "unicorn-c": ("unicorn",)}
    assert "name_mapping" in str(error.value)
    assert space.word_ids(["unicorn"], name_mapping={"unicorn": "cat"}) == [(3,)]


def test_nearest_is_cosine_and_batched(space):
    queries = np.array([[0.0, 1.0, 1.1], [5.0, 0.1, 0.0]])
    ids, similarity = space.nearest(queries, 2)
    assert ids.tolist() == [[3, 2], [0, 1]]  # by cosine: "dog" is stored 3x longer than "cat" but loses
    expected = VECTORS[3] @ queries[0] / np.linalg.norm(queries[0])
    assert similarity[0, 0] == pytest.approx(expected, rel=1e-6)
    ids, similarity = space.nearest(np.array([[0.0, -1.0, -2.0]]), 5)
    assert ids[0, -2:].tolist() == [2, 3] and similarity[0, 0] == pytest.approx(0.0)  # opposites rank last
    # restricted to candidate rows, answers stay in the full vocabulary's numbering
    ids, _ = space.nearest(queries[:1], 1, candidates=[0, 1, 2])
    assert ids.tolist() == [[2]]


def test_nearest_bad_input(space):
    with pytest.raises(ValueError, match=r"queries must have shape \(Q, 3\)"):
        space.nearest(np.ones((2, 4)), 1)
    with pytest.raises(ValueError, match="k must lie in"):
        space.nearest(np.ones((2, 3)), 6)


def test_construction_errors_and_subset(space):
    with pytest.raises(ValueError, match="more than once"):
        SemanticSpace(("a", "b", "a"), np.eye(3))
    with pytest.raises(ValueError, match=r"shape \(V, D\)"):
        SemanticSpace(("a", "b"), np.eye(3))
    with pytest.raises(ValueError, match="non-finite"):
        SemanticSpace(("a",), np.array([[np.nan]]))
    small = space.subset(["dog", "sky"])
    assert small.words == ("dog", "sky") and len(small) == 2 and small.dim == 3 and "cat" not in small
    with pytest.raises(OutOfVocabularyError):
        space.subset(["horse"])
