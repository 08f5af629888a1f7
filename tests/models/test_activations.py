"""layer_activations / iter_layer_activations: a layer's maps on uint8 images, by hand on a tiny CNN."""

from contextlib import closing

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.models import (
    Classifier,
    ClassifierSpec,
    LayerNotFoundError,
    iter_layer_activations,
    layer_activations,
    preprocess,
)


def _images() -> np.ndarray:
    """Five 4x4 images: image i has the constant colour (20 i, 40 i, 10 i)."""
    colours = np.array([[20, 40, 10]], np.uint8) * np.arange(5, dtype=np.uint8)[:, None]
    return np.broadcast_to(colours[:, None, None, :], (5, 4, 4, 3)).copy()


class _ModeRecorder(nn.Module):
    """Identity that records whether it ran in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        return x


def test_conv_maps_by_hand(tiny_cnn):
    # layer1.0.conv: channel 0 = red + 0.5, channel 1 = green + blue, with RGB in [0, 1]
    maps = layer_activations(tiny_cnn, "layer1.0.conv", _images(), batch_size=2)
    assert maps.shape == (5, 2, 4, 4) and maps.dtype == torch.float32 and maps.device.type == "cpu"
    i = torch.arange(5, dtype=torch.float32)
    torch.testing.assert_close(maps[:, 0, 2, 1], 20 * i / 255 + 0.5)
    torch.testing.assert_close(maps[:, 1, 0, 3], (40 * i / 255) + (10 * i / 255))


def test_flat_outputs_become_one_by_one_maps(tiny_cnn):
    logits = layer_activations(tiny_cnn, "fc", _images())
    assert logits.shape == (5, 3, 1, 1)
    x = torch.from_numpy(_images()).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        torch.testing.assert_close(logits[:, :, 0, 0], tiny_cnn(x))


def test_batches_and_indices(tiny_cnn):
    batches = list(iter_layer_activations(tiny_cnn, "avgpool", _images(), batch_size=2))
    assert [indices.tolist() for indices, _ in batches] == [[0, 1], [2, 3], [4]]
    assert [tuple(maps.shape) for _, maps in batches] == [(2, 2, 1, 1), (2, 2, 1, 1), (1, 2, 1, 1)]
    torch.testing.assert_close(torch.cat([maps for _, maps in batches]),
                               layer_activations(tiny_cnn, "avgpool", _images(), batch_size=5))


def test_a_classifier_spec_preprocesses_the_images(tiny_cnn):
    spec = ClassifierSpec(input_size=(4, 4), in_channels=3, value_range=(0.0, 255.0), mean=(10.0, 20.0, 30.0),
                          std=(2.0, 4.0, 8.0), resize_to=None, penultimate_layer="avgpool",
                          class_names=("a", "b", "c"))
    images = _images()
    x = preprocess(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 * 2 - 1, spec)
    with torch.no_grad():
        expected = tiny_cnn.layer1[0].conv(x)
    torch.testing.assert_close(layer_activations(tiny_cnn, "layer1.0.conv", images, spec=spec), expected)
    wrapped = Classifier(tiny_cnn, spec)  # a Classifier brings its own spec
    torch.testing.assert_close(layer_activations(wrapped, "layer1.0.conv", images), expected)


def test_runs_in_eval_mode_and_restores_modes_also_when_stopped_early(tiny_cnn):
    recorder = _ModeRecorder()
    model = nn.Sequential(tiny_cnn.layer1, recorder).train()
    model[0][0].eval()
    layer_activations(model, "1", _images(), batch_size=2)
    assert recorder.seen == [False, False, False]
    assert model.training and recorder.training and not model[0][0].training
    with closing(iter_layer_activations(model, "1", _images(), batch_size=2)) as batches:
        next(batches)
        assert not recorder.training
    assert model.training and recorder.training and not model[0][0].training


def test_bad_input(tiny_cnn):
    with pytest.raises(LayerNotFoundError, match="layer1.0.conv"):
        layer_activations(tiny_cnn, "layer1.0.cnv", _images())
    with pytest.raises(ValueError, match="uint8"):
        layer_activations(tiny_cnn, "fc", _images().astype(np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        layer_activations(tiny_cnn, "fc", _images(), batch_size=0)
    with pytest.raises(ValueError, match="no images"):
        layer_activations(tiny_cnn, "fc", _images()[:0])
    scalar = nn.Sequential(nn.Flatten(0))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        layer_activations(scalar, "0", _images())
