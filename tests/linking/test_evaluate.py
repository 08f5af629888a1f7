"""Tests for linkviz.linking.evaluate on a tiny world where r is an affine function of w.

The fake generator's synthesis is linear in w and the classifier is a 1x1 conv + global average pool + linear
head, so ``r = c + w @ M`` exactly and the link ``w = (r - c) @ pinv(M)`` inverts the cycle.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.linking import LinearLink, LinkEvaluation, evaluate_link, fit_linear_link
from linkviz.models import Classifier, ClassifierSpec
from linkviz.pairs import PairSet

W_DIM = 3  # global pooling keeps one number per colour channel, so at most 3 latent dims are recoverable
R_DIM = 6
RESOLUTION = 4


class LinearGenerator(nn.Module):
    """images = (ws[:, 0] @ S) as [N, 3, 4, 4]: a colour per image plus a weak pattern, inside [-1, 1]."""

    w_dim = W_DIM
    num_ws = 2
    c_dim = 3

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        colour = 0.2 * torch.randn(W_DIM, 3, 1, generator=generator)
        pattern = 0.02 * torch.randn(W_DIM, 3, RESOLUTION**2, generator=generator)
        self.register_buffer("S", (colour + pattern).reshape(W_DIM, -1))
        self.register_buffer("w_avg", torch.randn(self.c_dim, W_DIM, generator=generator))
        self.calls = 0

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        assert ws.shape[1:] == (self.num_ws, self.w_dim)
        self.calls += 1
        return (ws[:, 0] @ self.S).view(-1, 3, RESOLUTION, RESOLUTION)


class PoolNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(1)
        self.conv = nn.Conv2d(3, R_DIM, kernel_size=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(R_DIM, 3)
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * name.endswith("weight"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


@pytest.fixture
def world():
    spec = ClassifierSpec(input_size=(RESOLUTION, RESOLUTION), in_channels=3, value_range=(-1.0, 1.0),
                          mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resize_to=None, penultimate_layer="pool",
                          class_names=("a", "b", "c"), head_layer="fc")
    return LinearGenerator().eval(), Classifier(PoolNet(), spec)


def _r_of_w(generator, classifier, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits, r = classifier.forward_generated(generator.synthesis(w[:, None].expand(-1, generator.num_ws, -1)))
    return logits, r


def _pairs(generator, classifier, n: int, seed: int) -> PairSet:
    w = 0.5 * torch.randn(n, W_DIM, generator=torch.Generator().manual_seed(seed))
    logits, r = _r_of_w(generator, classifier, w)
    predicted = logits.argmax(1).numpy()
    return PairSet(w=w.numpy(), r=r.numpy(), labels=predicted, predicted=predicted,
                   accepted=np.ones(n, dtype=bool), seeds=np.arange(n) + 1000 * seed)


def _exact_link(generator, classifier) -> LinearLink:
    """Probe the affine map r = c + w @ M with w = 0 and unit vectors, and invert it."""
    _, r = _r_of_w(generator, classifier, torch.cat([torch.zeros(1, W_DIM), torch.eye(W_DIM)]))
    offset, slopes = r[0].double(), (r[1:] - r[0]).double()
    inverse = torch.linalg.pinv(slopes)  # (R_DIM, W_DIM)
    return LinearLink(weight=inverse.T.numpy(), bias=(-offset @ inverse).numpy())


def test_exact_link_has_zero_cycle_error(world):
    generator, classifier = world
    link = _exact_link(generator, classifier)
    test_pairs = _pairs(generator, classifier, 30, seed=1)
    assert len(np.unique(test_pairs.labels)) > 1
    generator.calls = 0
    evaluation = evaluate_link(link, generator, classifier, test_pairs, batch_size=8)
    assert isinstance(evaluation, LinkEvaluation) and len(evaluation) == 30
    assert evaluation.w_mse.max() < 1e-8
    np.testing.assert_allclose(evaluation.w_cosine, 1.0, atol=1e-5)
    assert evaluation.class_agreement.all() and evaluation.label_agreement.all()
    assert evaluation.perceptual_distance.max() < 1e-5
    assert evaluation.pixel_l1.max() < 1e-5
    assert generator.calls == 3 * 4  # original, cycled and shuffled-r image per batch of 8


def test_link_fitted_on_training_pairs_is_near_exact(world):
    generator, classifier = world
    train = _pairs(generator, classifier, 60, seed=2)
    link = fit_linear_link(train.r, train.w, method="ols").link
    evaluation = evaluate_link(link, generator, classifier, _pairs(generator, classifier, 20, seed=3))
    assert evaluation.w_mse.mean() < 1e-6
    assert evaluation.class_agreement.mean() == 1.0


def test_corrupted_link_scores_worse(world):
    generator, classifier = world
    test_pairs = _pairs(generator, classifier, 40, seed=4)
    exact = evaluate_link(_exact_link(generator, classifier), generator, classifier, test_pairs)
    link = _exact_link(generator, classifier)
    corrupted_link = LinearLink(weight=-link.weight, bias=-link.bias)  # w~ = -w
    corrupted = evaluate_link(corrupted_link, generator, classifier, test_pairs)
    np.testing.assert_allclose(corrupted.w_cosine, -1.0, atol=1e-5)
    assert corrupted.w_mse.mean() > 1.0 > 1e6 * exact.w_mse.mean()
    assert corrupted.class_agreement.mean() < 1.0
    assert corrupted.perceptual_distance.mean() > 100 * max(exact.perceptual_distance.mean(), 1e-8)
    assert corrupted.pixel_l1.mean() > 100 * max(exact.pixel_l1.mean(), 1e-8)


def test_to_frame_is_tidy_and_per_example_arrays_are_kept(world):
    generator, classifier = world
    test_pairs = _pairs(generator, classifier, 10, seed=5)
    evaluation = evaluate_link(_exact_link(generator, classifier), generator, classifier, test_pairs)
    frame = evaluation.to_frame()
    assert list(frame.columns) == ["metric", "mean", "std", "n"]
    assert list(frame["metric"]) == ["w_mse", "w_cosine", "class_agreement", "label_agreement",
                                     "perceptual_distance", "pixel_l1", "majority_agreement", "shuffled_agreement"]
    assert (frame["n"] == 10).all() and evaluation.conditional  # a class-conditional generator: labels mean something
    examples = evaluation.per_example_frame()
    assert len(examples) == 10 and "seeds" in examples.columns
    np.testing.assert_array_equal(evaluation.seeds, test_pairs.seeds)
    assert evaluation.w_linked.shape == (10, W_DIM)


def test_results_do_not_depend_on_batch_size(world):
    generator, classifier = world
    link = _exact_link(generator, classifier)
    test_pairs = _pairs(generator, classifier, 11, seed=6)
    corrupted = LinearLink(weight=link.weight + 0.3, bias=link.bias)
    one = evaluate_link(corrupted, generator, classifier, test_pairs, batch_size=3)
    two = evaluate_link(corrupted, generator, classifier, test_pairs, batch_size=64)
    np.testing.assert_allclose(one.w_mse, two.w_mse, rtol=1e-5)
    np.testing.assert_array_equal(one.predicted_cycled, two.predicted_cycled)


def test_truncation_pulls_the_cycled_latent_to_the_class_average(world):
    generator, classifier = world
    link = _exact_link(generator, classifier)
    test_pairs = _pairs(generator, classifier, 12, seed=7)
    untruncated = evaluate_link(link, generator, classifier, test_pairs)
    psi_one = evaluate_link(link, generator, classifier, test_pairs, truncation_psi=1.0)
    np.testing.assert_allclose(psi_one.pixel_l1, untruncated.pixel_l1, atol=1e-6)
    psi_zero = evaluate_link(link, generator, classifier, test_pairs, truncation_psi=0.0)
    centers = generator.w_avg[torch.as_tensor(test_pairs.labels)]
    logits, _ = _r_of_w(generator, classifier, centers)
    np.testing.assert_array_equal(psi_zero.predicted_cycled, logits.argmax(1).numpy())
    np.testing.assert_allclose(psi_zero.w_mse, untruncated.w_mse, atol=1e-8)  # latent metrics use w~ itself


def test_bad_input(world):
    generator, classifier = world
    link = _exact_link(generator, classifier)
    test_pairs = _pairs(generator, classifier, 4, seed=8)
    empty = PairSet(w=np.zeros((0, W_DIM)), r=np.zeros((0, R_DIM)), labels=np.zeros(0, int),
                    predicted=np.zeros(0, int), accepted=np.zeros(0, bool), seeds=np.zeros(0, int))
    with pytest.raises(ValueError, match="test_pairs is empty"):
        evaluate_link(link, generator, classifier, empty)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        evaluate_link(link, generator, classifier, test_pairs, batch_size=0)
    wide = LinearLink(weight=np.zeros((W_DIM + 1, R_DIM)), bias=np.zeros(W_DIM + 1))
    with pytest.raises(ValueError, match="the link predicts w of 4 dims but the generator's w_dim is 3"):
        evaluate_link(wide, generator, classifier, test_pairs)


def test_exact_link_beats_both_baselines(world):
    generator, classifier = world
    test_pairs = _pairs(generator, classifier, 60, seed=9)
    evaluation = evaluate_link(_exact_link(generator, classifier), generator, classifier, test_pairs)
    counts = np.bincount(test_pairs.predicted, minlength=3)
    assert evaluation.majority_class == int(counts.argmax())
    assert evaluation.majority_agreement.mean() == pytest.approx(counts.max() / 60)  # ground truth: the counts
    assert counts.max() < 60  # several classes, so the majority baseline is below 1
    # A shuffled r is the exact r of another image: the cycle agrees when both images share a class, which for
    # independent draws happens with probability sum p_k^2 (< the majority share); 60 pairs leave room.
    assert evaluation.class_agreement.mean() == 1.0
    assert evaluation.shuffled_agreement.mean() < 1.0
    assert evaluation.class_agreement.mean() > evaluation.majority_agreement.mean()
    np.testing.assert_array_equal(evaluation.shuffled_agreement,
                                  evaluate_link(_exact_link(generator, classifier), generator, classifier,
                                                test_pairs, seed=0).shuffled_agreement)  # seeded permutation


def test_a_link_of_noise_does_not_beat_the_baselines(world):
    generator, classifier = world
    train = _pairs(generator, classifier, 200, seed=12)
    unrelated_w = train.w[np.random.default_rng(0).permutation(len(train))]  # w that r says nothing about
    noise = fit_linear_link(train.r, unrelated_w, method="ridge", seed=0).link
    test_pairs = _pairs(generator, classifier, 200, seed=10)
    evaluation = evaluate_link(noise, generator, classifier, test_pairs)
    # r carries no information about w, so the link's class agreement is chance: no better than answering the
    # majority class, and the same as feeding it another image's r. 200 pairs: binomial spread about 0.035.
    agreement = evaluation.class_agreement.mean()
    assert agreement <= evaluation.majority_agreement.mean() + 0.1
    assert abs(agreement - evaluation.shuffled_agreement.mean()) < 0.12


def test_shuffled_r_comes_from_another_example(world):
    generator, classifier = world
    test_pairs = _pairs(generator, classifier, 2, seed=11)
    link = _exact_link(generator, classifier)
    evaluation = evaluate_link(link, generator, classifier, test_pairs)
    # two pairs: each is fed the other's r, so the baseline agrees exactly when both images share a class
    same = test_pairs.predicted[0] == test_pairs.predicted[1]
    np.testing.assert_array_equal(evaluation.shuffled_agreement, [same, same])
