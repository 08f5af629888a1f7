"""Toy-world training: initial weights from an explicit generator only, seeded runs, the global RNG left alone."""

import numpy as np
import pytest
import torch
from single_thread import single_thread  # noqa: F401

from linkviz.worlds.toy.classifier_net import ToyResNet
from linkviz.worlds.toy.discriminator import PatchDiscriminator
from linkviz.worlds.toy.generator_net import ToyGenerator
from linkviz.worlds.toy.training import _initialise, train_classifier, train_generator


def _native(network_class, seed):
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in network_class().state_dict().items()}


@pytest.mark.parametrize("network_class", [ToyResNet, ToyGenerator, PatchDiscriminator])
def test_initialisation_follows_the_defaults_without_the_global_rng(network_class):
    state = torch.get_rng_state()
    try:
        drawn = []
        for global_seed in (0, 1):
            torch.manual_seed(global_seed)
            network = network_class()
            _initialise(network, torch.Generator().manual_seed(7))
            drawn.append(network.state_dict())
        native, native_again = _native(network_class, 0), _native(network_class, 1)
    finally:
        torch.set_rng_state(state)
    for name, tensor in drawn[0].items():
        torch.testing.assert_close(tensor, drawn[1][name], msg=f"{name} depends on the global RNG")
        if torch.equal(native[name], native_again[name]):  # set without randomness: unchanged
            torch.testing.assert_close(tensor, native[name], msg=f"{name} should keep its deterministic value")
        elif tensor.numel() >= 256:  # same distribution as the module's own initialisation (5 standard errors)
            std = float(native[name].std())
            assert float(tensor.std()) == pytest.approx(std, rel=5 / tensor.numel() ** 0.5), name
            assert abs(float(tensor.mean() - native[name].mean())) < 5 * std * (2 / tensor.numel()) ** 0.5, name


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
