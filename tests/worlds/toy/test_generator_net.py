"""ToyGenerator speaks the StyleGAN convention and knows the ground truth of every sample."""

import numpy as np
import pytest
import torch

from linkviz.models import Generator, hooks
from linkviz.worlds.toy.factors import N_UNIFORMS, factors_from_uniform
from linkviz.worlds.toy.generator_net import ToyGenerator, grow_state_dict, uniform_to_latent


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = ToyGenerator().eval()
    g.update_w_avg(samples_per_class=32, seed=0)
    return g


def test_protocol_attributes_and_shapes(generator):
    assert isinstance(generator, Generator)
    z = torch.randn(3, generator.z_dim)
    c = torch.eye(generator.c_dim)[[0, 2, 4]]
    ws = generator.mapping(z, c, truncation_psi=0.7)
    assert ws.shape == (3, generator.num_ws, generator.w_dim)
    assert torch.equal(ws[:, 0], ws[:, -1])
    images = generator.synthesis(ws)
    assert images.shape == (3, 3, generator.img_resolution, generator.img_resolution)
    assert images.min() >= -1 and images.max() <= 1


def test_truncation_pulls_toward_each_class_average(generator):
    z = torch.randn(4, generator.z_dim)
    c = torch.eye(generator.c_dim)[[1, 1, 3, 3]]
    collapsed = generator.mapping(z, c, truncation_psi=0.0)[:, 0]
    torch.testing.assert_close(collapsed, generator.w_avg[[1, 1, 3, 3]])
    full = generator.mapping(z, c, truncation_psi=1.0)[:, 0]
    half = generator.mapping(z, c, truncation_psi=0.5)[:, 0]
    torch.testing.assert_close(half, (full + collapsed) / 2)


def test_latent_reproduces_a_chosen_factor_record(generator):
    u = np.random.default_rng(0).random((5, N_UNIFORMS))
    labels = np.arange(5)
    wanted = factors_from_uniform(labels, u)
    z = torch.from_numpy(uniform_to_latent(u))
    got = generator.factors(z, torch.eye(5)[labels])
    for name, value in wanted.as_dict().items():
        np.testing.assert_allclose(getattr(got, name), value, rtol=1e-5, atol=1e-4, err_msg=name)


def test_synthesis_layers_are_hookable_and_bad_ws_refused(generator):
    ws = generator.mapping(torch.randn(2, generator.z_dim), torch.eye(5)[[0, 1]])
    with hooks(generator.synthesis_module, capture=generator.synthesis_layer_names()) as captured:
        generator.synthesis(ws)
    assert [captured[name].shape[-1] for name in generator.synthesis_layer_names()] == [8, 16, 32, 64]
    with pytest.raises(ValueError, match="ws must have shape"):
        generator.synthesis(ws[:, :3])


def test_training_can_continue_from_given_weights(generator):
    from linkviz.worlds.toy.classifier_net import ToyResNet
    from linkviz.worlds.toy.dataset import render_set
    from linkviz.worlds.toy.training import train_generator

    renders = render_set(2, seed=0, n_jobs=1)
    kwargs = {"steps": 1, "batch_size": 2, "seed": 1, "progress": False}
    continued = train_generator(renders, ToyResNet().eval(), initial_state=generator.state_dict(), **kwargs)
    fresh = train_generator(renders, ToyResNet().eval(), **kwargs)
    start = generator.synthesis.torgb.weight
    assert torch.allclose(continued.synthesis.torgb.weight, start, atol=1e-3)
    assert not torch.allclose(fresh.synthesis.torgb.weight, start, atol=1e-3)


def test_grown_network_computes_what_the_narrower_one_did():
    torch.manual_seed(0)
    narrow = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    wide = torch.nn.Sequential(torch.nn.Conv2d(5, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    grown = grow_state_dict(wide, narrow.state_dict())
    assert grown == ["0.weight"]
    x = torch.randn(2, 3, 6, 6)
    extra = torch.randn(2, 2, 6, 6)  # the new input channels contribute nothing until trained
    torch.testing.assert_close(wide(torch.cat([x, extra], 1)), narrow(x))
    with pytest.raises(ValueError, match="cannot grow"):
        grow_state_dict(narrow, wide.state_dict())
