"""Loading one network of a StyleGAN snapshot whose other networks need code that is not installed (issue 17, item 2):
StyleGAN-XL's D is built on timm; G_ema must load without it, D must say what is missing."""

from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tiny_stylegan
import torch
from official_snapshot import LAYOUT, fake_timm, layout_on_path, write_snapshot

from linkviz.models import StyleGANAdapter, UnsafePickleError, load_stylegan_pickle
from linkviz.models.network_pickle import MissingCode, NetworkUnpickler, find_missing

C_DIM = 10


@pytest.fixture(autouse=True)
def _no_timm():
    assert importlib.util.find_spec("timm") is None, "these tests need timm NOT to be installed"


@pytest.fixture
def snapshot(tmp_path):
    """(path of the snapshot, the G_ema that was pickled)."""
    path = tmp_path / "network-snapshot-000000.pkl"
    return path, write_snapshot(path, c_dim=C_DIM)


def _latents(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.randn(n, 16, generator=torch.Generator().manual_seed(3))
    return z, torch.eye(C_DIM)[torch.arange(n) % C_DIM]


def _load(path, **kwargs) -> StyleGANAdapter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_stylegan_pickle(path, allow_unpickle=True, **kwargs)


def test_g_ema_loads_and_renders_although_d_needs_timm(snapshot):
    path, original = snapshot
    z, c = _latents()
    with layout_on_path():
        G = _load(path, key="G_ema")
        assert (G.z_dim, G.c_dim, G.num_ws, G.img_resolution) == (16, C_DIM, original.num_ws, 32)
        torch.testing.assert_close(G.w_avg[0], original.mapping.w_avg)
        with torch.no_grad():
            expected = original(z, c, noise_mode="const").clamp(-1, 1)
            torch.testing.assert_close(G.synthesis(G.mapping(z, c)), expected, rtol=0, atol=1e-5)
        with pytest.raises(ImportError, match=r"needs module 'timm'.*timm==0\.4\.12.*\['D'\]") as info:
            _load(path, key="D")
        assert info.value.name == "timm" and "'G_ema'" in str(info.value)  # says which keys do load


def test_without_the_repository_on_sys_path_g_ema_says_where_its_code_comes_from(snapshot):
    with pytest.raises(ImportError, match=r"'torch_utils.*on sys\.path") as info:
        _load(snapshot[0], key="G_ema")
    assert info.value.name.startswith("torch_utils")


def test_opt_in_is_still_required(snapshot):
    with layout_on_path(), pytest.raises(UnsafePickleError, match="allow_unpickle=True"):
        load_stylegan_pickle(snapshot[0], key="G_ema")


def test_unpickler_leaves_a_placeholder_for_each_network_whose_code_is_missing(snapshot):
    """Both ways code goes missing: a persistent class whose pickled source imports timm (D itself) and a class
    pickled by reference to a timm module (D's backbone, found by ``find_class``)."""
    with layout_on_path(), snapshot[0].open("rb") as file:
        networks = NetworkUnpickler(file).load()
    assert isinstance(networks["D"], MissingCode) and networks["D"].module == "timm"
    assert "ProjectedDiscriminator" in networks["D"].what
    assert find_missing(networks["G_ema"]) is None and find_missing(networks["augment_pipe"]) is None
    assert networks["training_set_kwargs"].resolution == 32  # a dnnlib.EasyDict


def test_a_network_pickled_by_reference_to_a_missing_package_does_not_block_the_others(tmp_path):
    path = tmp_path / "by_reference.pkl"
    with fake_timm() as timm:
        path.write_bytes(pickle.dumps({"G_ema": tiny_stylegan.TinyG(), "D": timm.create_model("x")}))
    G = _load(path)
    assert G.num_ws == tiny_stylegan.TinyG().num_ws
    with pytest.raises(ImportError, match=r"timm==0\.4\.12.*timm\.models\.efficientnet\.EfficientNet"):
        _load(path, key="D")


def test_find_missing_looks_inside_containers_and_modules():
    holder = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert find_missing({"a": [holder, (1, "x")], "b": torch.zeros(3)}) is None
    holder[0].extra = {"deep": [MissingCode(module="timm", what="a backbone")]}
    assert find_missing({"a": [holder]}).module == "timm"


FRESH_PROCESS = textwrap.dedent("""
    import importlib.util, json, sys, warnings
    import numpy as np, torch
    sys.path.insert(0, sys.argv[1])  # the repository: dnnlib and torch_utils only
    from linkviz.models import load_stylegan_pickle
    assert all(importlib.util.find_spec(m) is None for m in ("training", "pg_modules", "timm"))
    warnings.simplefilter("ignore", UserWarning)
    G = load_stylegan_pickle(sys.argv[2], allow_unpickle=True, key="G_ema")
    z, c = torch.load(sys.argv[3])
    with torch.no_grad():
        np.save(sys.argv[4], G.synthesis(G.mapping(z, c)).numpy())
    try:
        load_stylegan_pickle(sys.argv[2], allow_unpickle=True, key="D")
        d_error = None
    except ImportError as error:
        d_error = str(error)
    print(json.dumps({"module": type(G.G).__module__, "d_error": d_error}))
""")


def test_a_fresh_process_rebuilds_g_ema_from_the_pickled_source_alone(snapshot, tmp_path):
    """Where the pickle is loaded, only dnnlib and torch_utils are importable: the generator's classes come from
    the module source stored in the pickle (StyleGAN's persistence), not from ``training.networks_stylegan2``."""
    path, original = snapshot
    repository = tmp_path / "repository"
    for package in ("dnnlib", "torch_utils"):
        shutil.copytree(LAYOUT / package, repository / package)
    z, c = _latents()
    torch.save((z, c), tmp_path / "latents.pt")
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(repository), str(path), str(tmp_path / "latents.pt"),
                          str(tmp_path / "images.npy")], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["module"].startswith("_imported_module_")
    assert "timm==0.4.12" in report["d_error"]
    with torch.no_grad():
        expected = original(z, c, noise_mode="const").clamp(-1, 1).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), expected, rtol=0, atol=1e-5)
