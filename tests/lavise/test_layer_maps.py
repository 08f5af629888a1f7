"""LaViSE reads a layer's maps through the model layer's one activation path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linkviz.lavise import features
from linkviz.models import eval_mode, layer_activations


def test_layer_maps_are_the_model_layers_activations(planted_model, planted_probe):
    images = planted_probe.images[:5]
    planted_model.train()
    maps = features.layer_maps(planted_model, "2", images, spec=None, device=torch.device("cpu"))
    assert planted_model.training  # run in eval mode, modes restored
    torch.testing.assert_close(maps, layer_activations(planted_model, "2", images), rtol=0, atol=0)
    assert maps.shape[:2] == (5, 3) and maps.dtype == torch.float32
    assert features.eval_mode is eval_mode
    with pytest.raises(ValueError, match="no images"):
        features.layer_maps(planted_model, "2", images[:0], spec=None, device=torch.device("cpu"))


def test_batches():
    assert [b.tolist() for b in features.batches(5, 2)] == [[0, 1], [2, 3], [4]]
    assert list(features.batches(0, 3)) == []
    with pytest.raises(ValueError, match="positive"):
        list(features.batches(3, 0))
    assert isinstance(next(features.batches(1, 1)), np.ndarray)
