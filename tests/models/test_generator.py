import pickle
import warnings

import pytest
import tiny_stylegan  # made importable by conftest.py
import torch
from torch import nn

from linkviz.models import (
    Generator,
    GeneratorOutputError,
    StyleGANAdapter,
    UnsafePickleError,
    ZOnlyGenerator,
    check_generated,
    hooks,
    load_stylegan_pickle,
    one_hot,
    run_with_cache,
)


def _write_network_pickle(path, G):
    """Lay the file out like a StyleGAN2/3/XL network pickle."""
    with open(path, "wb") as file:
        pickle.dump({"G": G, "D": None, "G_ema": G, "training_set_kwargs": {}, "augment_pipe": None}, file)
    return path


@pytest.fixture
def network_pkl(tmp_path):
    return _write_network_pickle(tmp_path / "network.pkl", tiny_stylegan.TinyG())


def _z(n=3, z_dim=4, seed=0):
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def test_pickle_refused_without_opt_in(network_pkl):
    with pytest.raises(UnsafePickleError, match="allow_unpickle=True") as info:
        load_stylegan_pickle(network_pkl)
    assert "arbitrary code" in str(info.value) and "torch_utils" in str(info.value)


def test_pickle_loads_with_opt_in_and_warns(network_pkl):
    with pytest.warns(UserWarning, match="network.pkl"):
        G = load_stylegan_pickle(network_pkl, allow_unpickle=True)
    assert isinstance(G, StyleGANAdapter) and isinstance(G, Generator)
    assert (G.z_dim, G.w_dim, G.c_dim, G.num_ws, G.img_resolution) == (4, 3, 2, 2, 4)
    assert G.synthesis_layer_names() == ["b4"]
    assert not G.G.training


def test_pickle_errors(tmp_path, network_pkl):
    with pytest.raises(FileNotFoundError):
        load_stylegan_pickle(tmp_path / "missing.pkl", allow_unpickle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(KeyError, match="G_ema"):
            load_stylegan_pickle(network_pkl, allow_unpickle=True, key="G_fancy")
        # a pickle whose classes live in a module that is not importable
        data = pickle.dumps(tiny_stylegan.TinyG()).replace(b"tiny_stylegan", b"missing_gan_x")
        (tmp_path / "other.pkl").write_bytes(data)
        with pytest.raises(ImportError, match="pip install missing_gan_x"):
            load_stylegan_pickle(tmp_path / "other.pkl", allow_unpickle=True)
        # a StyleGAN repository module: sys.path; StyleGAN-XL's discriminator package: its pinned version
        for module, words in (("torch_utils.x", "on sys.path"),  # names as long as "tiny_stylegan": same pickle
                              ("timm.models.x", r"timm==0\.4\.12 \(StyleGAN-XL")):
            data = pickle.dumps(tiny_stylegan.TinyG()).replace(b"tiny_stylegan", module.encode())
            (tmp_path / f"{module}.pkl").write_bytes(data)
            with pytest.raises(ImportError, match=words):
                load_stylegan_pickle(tmp_path / f"{module}.pkl", allow_unpickle=True)


def test_truncation_per_class_w_avg():
    G = StyleGANAdapter(tiny_stylegan.TinyG(per_class=True))
    c = one_hot(torch.tensor([0, 1, 1]), 2)
    z = _z()
    ws = G.mapping(z, c, truncation_psi=0.0)
    assert ws.shape == (3, G.num_ws, G.w_dim)
    expected = G.G.mapping.w_avg[[0, 1, 1]][:, None, :].expand(3, 2, 3)
    assert torch.equal(ws, expected)
    assert torch.equal(G.mapping(z, c, truncation_psi=1.0), G.G.mapping(z, c))
    half = G.mapping(z, c, truncation_psi=0.5)
    torch.testing.assert_close(half, 0.5 * (expected + G.G.mapping(z, c)))
    assert set(G.G.mapping.psi_seen) == {1}  # truncation is done by the adapter, never by G


def test_truncation_shared_w_avg_and_unconditional():
    G = StyleGANAdapter(tiny_stylegan.TinyG(per_class=False))
    assert G.w_avg.shape == (2, 3)
    ws = G.mapping(_z(), one_hot(torch.tensor([0, 1, 0]), 2), truncation_psi=0.0)
    assert torch.equal(ws, G.G.mapping.w_avg.expand(3, 2, 3))
    G0 = StyleGANAdapter(tiny_stylegan.TinyG(c_dim=0, per_class=False))
    assert G0.w_avg.shape == (1, 3)
    assert torch.equal(G0.mapping(_z(), truncation_psi=0.0), G0.G.mapping.w_avg.expand(3, 2, 3))
    with pytest.raises(ValueError, match="one_hot"):
        G.mapping(_z())


def test_synthesis_uses_const_noise_and_falls_back():
    G = StyleGANAdapter(tiny_stylegan.TinyG())
    ws = G.mapping(_z(), one_hot(torch.tensor([0, 1, 0]), 2))
    images = G.synthesis(ws)
    assert images.shape == (3, 3, 4, 4)
    assert G.G.synthesis.noise_modes == ["const"]
    G_old = StyleGANAdapter(tiny_stylegan.TinyG(noise_kwarg=False))
    assert G_old.synthesis(ws).shape == (3, 3, 4, 4)
    with pytest.raises(ValueError, match="num_ws=2"):
        G.synthesis(ws[:, :1])


def test_synthesis_layers_are_hookable():
    G = StyleGANAdapter(tiny_stylegan.TinyG())
    ws = G.mapping(_z(), one_hot(torch.tensor([0, 1, 0]), 2))
    with hooks(G.synthesis_module, capture=G.synthesis_layer_names()) as store:
        G.synthesis(ws)
    assert store["b4"].shape == (3, 48)


def test_bad_generator_output_raises():
    G = StyleGANAdapter(tiny_stylegan.TinyG(fill=float("nan")))
    with pytest.raises(GeneratorOutputError, match="48 NaN"):
        G.synthesis(torch.zeros(1, 2, 3))


def test_stylegan_output_beyond_the_unit_range_is_clamped_and_counted():
    """StyleGAN output is unbounded (counterfactual latents of a StyleGAN3 reached [-1.32, 1.34]); like NVlabs'
    scripts, the adapter clamps instead of refusing, and counts what it clamped."""
    G = StyleGANAdapter(tiny_stylegan.TinyG(fill=1.3))
    images = G.synthesis(torch.zeros(2, 2, 3))
    assert float(images.max()) == 1.0 and G.values_clamped == images.numel() == G.values_rendered
    assert G.clamped_fraction == 1.0
    with pytest.raises(GeneratorOutputError, match="outside"):
        check_generated(torch.full((1, 3, 2, 2), 1.3))  # generators that promise [-1, 1] are still held to it
    assert float(check_generated(torch.full((1, 3, 2, 2), -1.3), clamp=True).min()) == -1.0


def test_check_generated_passes_good_images():
    images = torch.zeros(1, 3, 2, 2)
    assert check_generated(images) is images
    with pytest.raises(GeneratorOutputError, match="inf"):
        check_generated(torch.tensor([float("inf"), 0, 0]).view(1, 3, 1, 1))


def test_one_hot():
    assert torch.equal(one_hot(torch.tensor([2, 0]), 3), torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    with pytest.raises(IndexError):
        one_hot(torch.tensor([3]), 3)


def test_z_only_generator_dcgan():
    module = nn.Sequential(nn.ConvTranspose2d(5, 3, kernel_size=4), nn.Tanh())
    G = ZOnlyGenerator(module, z_dim=5, img_resolution=4, z_shape="conv")
    assert isinstance(G, Generator)
    assert (G.c_dim, G.num_ws, G.w_dim) == (0, 1, 5)
    z = _z(z_dim=5)
    ws = G.mapping(z)
    assert ws.shape == (3, 1, 5) and torch.equal(ws[:, 0], z)
    assert torch.equal(G.mapping(z, truncation_psi=0.0), torch.zeros(3, 1, 5))
    torch.testing.assert_close(G.mapping(z, truncation_psi=0.5)[:, 0], 0.5 * z)
    images, cache = run_with_cache(G.synthesis_module, ws[:, 0, :, None, None], G.synthesis_layer_names())
    torch.testing.assert_close(G.synthesis(ws), images)
    assert cache["0"].shape == (3, 3, 4, 4)
    assert torch.equal(G.w_avg, torch.zeros(1, 5))
