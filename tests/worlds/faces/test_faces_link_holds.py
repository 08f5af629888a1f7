"""The faces link holds: the linear link followed by feature inversion (RefinedLink) on the faces world.

Quickstart budget (60 pairs per emotion: 420 unconditional draws, seed 0); held-out pairs drawn with seed 9.
Measured on one thread (see :mod:`linkviz.worlds.faces.world`): on 128 held-out pairs the ridge link agrees with
the class of the original in 0.49 of them, always answering the majority class ("neutral") in 0.45, the ridge link
+ 40 steps of feature inversion (``linked.refined_link()``) in 0.77 (+0.32 over the majority; the issue's target is
+0.20); on 96 pairs ridge 0.48, majority 0.51; on 300 pairs, 20 steps reach 0.68 (majority 0.48).
"""

import numpy as np
import pytest
import torch

import linkviz

pytest.importorskip("fer")
pytest.importorskip("gan_face_generate")
pytest.importorskip("h5py")


N_TEST = 96


@pytest.fixture(scope="module")
def linked(quickstart_linked):
    return quickstart_linked


@pytest.fixture(scope="module")
def held_out(linked):
    return linkviz.sample_pairs(linked.generator, linked.classifier, classes=[0], samples_per_class=N_TEST, seed=9,
                                progress=False)


def _classes_of(linked, w: np.ndarray) -> np.ndarray:
    images = linked.generator.synthesis(torch.as_tensor(w)[:, None, :].expand(-1, linked.generator.num_ws, -1))
    return linked.classifier.forward_generated(images)[0].argmax(dim=1).numpy()


def test_the_refined_link_beats_the_majority_class_by_twenty_points_on_held_out_faces(linked, held_out):
    refined = linked.refined_link()  # 40 steps of feature inversion from the ridge latent
    w = refined.predict(held_out.r)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), linked.link.latent_norm, rtol=1e-4)  # on the shell
    majority = np.bincount(held_out.predicted).max() / len(held_out)
    linear = (_classes_of(linked, linked.link.predict(held_out.r)) == held_out.predicted).mean()
    inverted = (_classes_of(linked, w) == held_out.predicted).mean()
    # measured 0.77 against a majority of 0.45 on 128 pairs (+0.32); at 96 pairs the binomial SE is 0.045, so
    # the issue's +0.20 leaves about 2.5 SE of margin. The linear link alone sits at the majority level (0.48).
    assert inverted >= majority + 0.20, (inverted, majority, linear)
    assert inverted - linear >= 0.15, (inverted, linear)
    # r -> w is a deterministic function for a given batch (fixed start, steps and step size); other batch sizes
    # run other convolution kernels, whose round-off Adam's normalised steps amplify (see RefinedLink)
    np.testing.assert_array_equal(refined.predict(held_out.r[:4]), refined.predict(held_out.r[:4]))
