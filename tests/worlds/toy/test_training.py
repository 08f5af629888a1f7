"""Toy-world training: initial weights from an explicit generator only, seeded runs, the global RNG left alone."""

import numpy as np
import pytest
import torch
from single_thread import single_thread  # noqa: F401

from linkviz.worlds.toy.classifier_net import ToyResNet
from linkviz.worlds.toy.discriminator import PatchDiscriminator
from linkviz.worlds.toy.generator_net import ToyGenerator
from linkviz.worlds.toy.training import _fresh, train_classifier, train_generator


@pytest.mark.parametrize("network_class", [ToyResNet, ToyGenerator, PatchDiscriminator])
def test_initial_weights_come_from_the_explicit_generator_only(network_class):
    state = torch.get_rng_state()
    drawn = []
    for global_seed in (0, 1, 1):
        torch.manual_seed(global_seed)
        drawn.append(_fresh(network_class, torch.Generator().manual_seed(7 if len(drawn) < 2 else 8)).state_dict())
    torch.set_rng_state(state)
    for name, tensor in drawn[0].items():
        torch.testing.assert_close(tensor, drawn[1][name], msg=f"{name} depends on the global RNG")
    assert any(not torch.equal(tensor, drawn[2][name]) for name, tensor in drawn[0].items())  # seed 8 differs


def test_a_fresh_network_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    _fresh(ToyResNet, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.fixture(scope="module")
def renders():
    from linkviz.worlds.toy.dataset import render_set

    return render_set(2, seed=0, n_jobs=1)


def test_classifier_training_is_seeded_and_leaves_the_global_rng_alone(renders):
    state = torch.get_rng_state()
    first = train_classifier(renders, epochs=1, batch_size=4, seed=2, progress=False)
    again = train_classifier(renders, epochs=1, batch_size=4, seed=2, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert not first.training
    for name, tensor in first.state_dict().items():
        torch.testing.assert_close(tensor, again.state_dict()[name])
    assert int(first.bn1.num_batches_tracked) == len(renders) // 4  # the incomplete last batch is dropped


def test_generator_training_checkpoints_and_leaves_the_global_rng_alone(renders):
    classifier = ToyResNet().eval()
    state, seen = torch.get_rng_state(), []
    trained = train_generator(renders, classifier, steps=3, batch_size=2, seed=1, progress=False,
                              checkpoint=lambda ema, step: seen.append(step), checkpoint_every=2,
                              adversarial_weight=0.5)
    assert torch.equal(torch.get_rng_state(), state)
    assert seen == [2] and not trained.training
    assert np.isfinite(trained.w_avg.numpy()).all()
