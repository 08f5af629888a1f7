"""Generator features on an untrained ToyGenerator: shapes, layer choices, batching, and no leaked hooks."""

from __future__ import annotations

import pytest
import torch

from linkviz.models.hooks import LayerNotFoundError
from linkviz.segmentation import feature_layers, generator_features
from linkviz.worlds.toy.generator_net import ToyGenerator

# ToyGenerator's synthesis layers and their channels: blocks.b8 192, blocks.b16 128, blocks.b32 64, blocks.b64 32.


@pytest.fixture(scope="module")
def generator() -> ToyGenerator:
    torch.manual_seed(0)
    return ToyGenerator().eval()


@pytest.fixture
def ws(generator) -> torch.Tensor:
    return torch.randn(3, generator.num_ws, generator.w_dim, generator=torch.Generator().manual_seed(1))


def _hook_count(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in module.modules())


def test_default_layers_are_every_second_synthesis_layer(generator):
    assert feature_layers(generator) == ["blocks.b8", "blocks.b32"]
    assert feature_layers(generator, "all") == generator.synthesis_layer_names()
    assert feature_layers(generator, ["blocks.b64", "blocks.b64"]) == ["blocks.b64"]
    with pytest.raises(ValueError, match="sequence of layer names"):
        feature_layers(generator, "blocks.b64")


def test_features_have_concatenated_channels_at_the_mask_resolution(generator, ws):
    features = generator_features(generator, ws)
    assert features.shape == (3, 192 + 64, 64, 64)
    assert features.dtype == torch.float32
    small = generator_features(generator, ws, layers="all", resolution=16, mode="nearest")
    assert small.shape == (3, 192 + 128 + 64 + 32, 16, 16)


def test_features_match_the_layer_outputs(generator, ws):
    features = generator_features(generator, ws, layers=["blocks.b64", "blocks.b8"])
    captured = {}
    handles = [generator.synthesis.blocks[name].register_forward_hook(
        lambda module, inputs, output, name=name: captured.__setitem__(name, output)) for name in ("b64", "b8")]
    with torch.no_grad():
        generator.synthesis(ws)
    for handle in handles:
        handle.remove()
    torch.testing.assert_close(features[:, :32], captured["b64"])
    upsampled = torch.nn.functional.interpolate(captured["b8"], size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(features[:, 32:], upsampled)


def test_batching_does_not_change_the_features(generator, ws):
    whole = generator_features(generator, ws, resolution=32, batch_size=8)
    batched = generator_features(generator, ws, resolution=32, batch_size=2)
    torch.testing.assert_close(batched, whole)


def test_hooks_are_removed_also_after_errors(generator, ws):
    before = _hook_count(generator.synthesis_module)
    generator_features(generator, ws[:1], resolution=8)
    assert _hook_count(generator.synthesis_module) == before
    with pytest.raises(ValueError, match="ws must have shape"):
        generator_features(generator, ws[:1, :2], resolution=8)   # synthesis rejects the ws mid-call
    assert _hook_count(generator.synthesis_module) == before
    with pytest.raises(ValueError, match="spatial maps"):
        generator_features(generator, ws[:1], layers=["blocks.b8", "input"])   # raises with the hooks in place
    assert _hook_count(generator.synthesis_module) == before
    with pytest.raises(LayerNotFoundError, match="blocks.b64"):
        generator_features(generator, ws[:1], layers=["blocks.b65"])
    assert _hook_count(generator.synthesis_module) == before


def test_bad_arguments_raise(generator, ws):
    with pytest.raises(ValueError, match="N >= 1"):
        generator_features(generator, ws[:0])
    with pytest.raises(ValueError, match="batch_size"):
        generator_features(generator, ws, batch_size=0)
