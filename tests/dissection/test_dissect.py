"""dissect(): planted detectors, dead units, 1x1 layers, the cache key, and the toy classifier end to end."""

from __future__ import annotations

import gc
from pathlib import Path

import fake_dissection
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from linkviz.dissection import DissectionResult, ProbeDataset, Tally, dissect, dissection_cache_key
from linkviz.models.hooks import LayerNotFoundError


@pytest.fixture
def square_probe() -> ProbeDataset:
    """12 images 16x16: a bright-red 6x6 square labelled "square" on a dim noisy background; scene "beach-s"."""
    return fake_dissection.square_probe(12, seed=0, low=180)


def tiny_model() -> nn.Sequential:
    """conv (3 units: red, dead, green) -> ReLU -> global average pool -> flatten."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0] = 1.0  # unit 0 reads the red channel
        conv.bias[1] = -1.0  # unit 1 is always negative: dead after the ReLU
        conv.weight[2, 1] = 1.0  # unit 2 reads the (noise) green channel
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_planted_detector_and_dead_unit(square_probe):
    model = tiny_model()
    # 36 of 256 pixels are squares; the top 10 % of red values all lie inside them
    result = dissect(model, "1", square_probe, quantile=0.1, batch_size=5, progress=False)
    frame = result.to_frame()
    assert list(frame.columns) == ["unit", "label", "category", "iou", "is_detector"] and len(frame) == 3
    assert frame.loc[0, "label"] in ("square", "red-c") and frame.loc[0, "iou"] > 0.5
    assert frame.loc[0, "is_detector"]
    assert tuple(frame.loc[1, ["label", "category", "iou", "is_detector"]]) == ("none", "none", 0.0, False)
    assert result.dead_units.tolist() == [False, True, False]
    assert result.unique_detectors() == len(set(frame.label[frame.is_detector]))
    assert result.image_max.shape == (12, 3)
    table = result.detectors_per_concept()
    assert table.units.sum() == frame.is_detector.sum()


def test_threshold_is_the_exact_quantile(square_probe):
    model = tiny_model()
    result = dissect(model, "0", square_probe, quantile=0.005, progress=False)
    with torch.no_grad():
        maps = model[0](torch.from_numpy(square_probe.images).permute(0, 3, 1, 2).float() / 255)
    expected = np.quantile(maps.transpose(0, 1).reshape(3, -1).double().numpy(), 0.995, axis=1)
    np.testing.assert_array_equal(result.thresholds, expected)
    lite = dissect(model, "0", square_probe, quantile=0.005, mode="lite", progress=False)
    assert lite.level == 994 / 999 and lite.mode == "lite"


def test_one_by_one_and_flat_layers(square_probe):
    model = tiny_model()
    pooled = dissect(model, "2", square_probe, quantile=0.2, progress=False)  # [N, 3, 1, 1]
    flat = dissect(model, "3", square_probe, quantile=0.2, progress=False)  # [N, 3]
    assert len(pooled.to_frame()) == 3
    np.testing.assert_array_equal(pooled.counts.intersection, flat.counts.intersection)
    pixels = 16 * 16
    assert np.all(pooled.counts.active % pixels == 0)  # a 1x1 map turns whole images on or off
    assert pooled.to_frame().loc[1, "label"] == "none"


def test_no_hooks_leak_and_training_mode_restored(square_probe):
    model = tiny_model().train()
    dissect(model, "1", square_probe, progress=False)
    assert all(module.training for module in model.modules())
    assert not any(module._forward_hooks for module in model.modules())
    with pytest.raises(LayerNotFoundError):
        dissect(model, "layer9", square_probe, progress=False)
    assert not any(module._forward_hooks for module in model.modules())


def test_rerunning_the_model_gives_the_kept_activations_result(square_probe):
    model = tiny_model()
    kept = dissect(model, "0", square_probe, quantile=0.1, batch_size=5, progress=False)
    rerun = dissect(model, "0", square_probe, quantile=0.1, batch_size=5, keep_activations_bytes=0, progress=False)
    np.testing.assert_array_equal(rerun.thresholds, kept.thresholds)
    for name in ("intersection", "activation", "truth", "active"):
        np.testing.assert_array_equal(getattr(rerun.counts, name), getattr(kept.counts, name))
    np.testing.assert_array_equal(rerun.top_maps, kept.top_maps)


@pytest.mark.parametrize("keep_activations_bytes", [0, 2**28])
def test_modes_restored_when_dissection_fails_half_way(square_probe, monkeypatch, keep_activations_bytes):
    """The tally raises in the second pass; every submodule gets its own mode back before the error reaches the
    caller (also while the traceback still holds the activation generator)."""
    def fail(*args, **kwargs):
        raise RuntimeError("tally failed")

    monkeypatch.setattr(Tally, "update", fail)
    model = tiny_model().train()
    model[2].eval()
    with pytest.raises(RuntimeError, match="tally failed") as info:
        dissect(model, "1", square_probe, keep_activations_bytes=keep_activations_bytes, progress=False)
    assert [m.training for m in model.modules()] == [True, True, True, False, True]
    del info  # frees the traceback: an unclosed activation generator would now put the model back in eval mode
    gc.collect()
    assert [m.training for m in model.modules()] == [True, True, True, False, True]
    assert not any(module._forward_hooks for module in model.modules())


def test_cache_key_covers_layer_and_every_argument(square_probe):
    model = tiny_model()
    key = dissection_cache_key(model, "1", square_probe)
    assert key == dissection_cache_key(model, "1", square_probe)
    assert key != dissection_cache_key(model, "0", square_probe)  # the reference's bug: the layer was ignored
    assert key != dissection_cache_key(model, "1", square_probe, quantile=0.01)
    assert key != dissection_cache_key(model, "1", square_probe, mode="lite")
    assert key != dissection_cache_key(model, "1", square_probe, categories=["object"])
    other = tiny_model()
    with torch.no_grad():
        other[0].weight[0, 0] = 2.0
    assert key != dissection_cache_key(other, "1", square_probe)


def test_cache_reuses_only_matching_entries(square_probe, tmp_path):
    model = tiny_model()
    first = dissect(model, "0", square_probe, quantile=0.1, cache_dir=tmp_path, progress=False)
    second = dissect(model, "1", square_probe, quantile=0.1, cache_dir=tmp_path, progress=False)
    assert len(list((tmp_path / "dissection").iterdir())) == 2
    assert not np.array_equal(first.thresholds, second.thresholds)  # layer 1 (after ReLU) has its own entry
    fresh = dissect(model, "1", square_probe, quantile=0.1, progress=False)
    cached = dissect(model, "1", square_probe, quantile=0.1, cache_dir=tmp_path, progress=False)
    assert len(list((tmp_path / "dissection").iterdir())) == 2
    pd.testing.assert_frame_equal(cached.to_frame(), fresh.to_frame())
    np.testing.assert_array_equal(cached.counts.activation, fresh.counts.activation)


def test_bad_arguments(square_probe):
    model = tiny_model()
    with pytest.raises(ValueError, match="quantile"):
        dissect(model, "1", square_probe, quantile=0.0, progress=False)
    with pytest.raises(ValueError, match="mode"):
        dissect(model, "1", square_probe, mode="original", progress=False)
    with pytest.raises(ValueError, match="unknown categories"):
        dissect(model, "1", square_probe, categories=["material"], progress=False)


WEIGHTS = Path(__file__).resolve().parents[2] / "linkviz" / "worlds" / "toy" / "weights" / "classifier.safetensors"


@pytest.mark.skipif(not WEIGHTS.exists(), reason="toy classifier weights not present")
def test_toy_classifier_layer4_smoke(toy_probe):
    from linkviz.models.classifier import Classifier
    from linkviz.worlds.toy import TOY_CLASSIFIER_SPEC
    from linkviz.worlds.toy.world import load_classifier_module

    classifier = Classifier(load_classifier_module(), TOY_CLASSIFIER_SPEC)
    for mode in ("paper", "lite"):
        result = dissect(classifier, "layer4", toy_probe, batch_size=2, mode=mode, progress=False)
        assert isinstance(result, DissectionResult)
        frame = result.to_frame()
        assert len(frame) == 256 and frame.iou.between(0, 1).all()
        assert result.unique_detectors() >= 1
        assert set(frame.category) <= set(toy_probe.categories) | {"none"}


def test_segmentation_coarser_than_images(small_probe):
    # Broden-style: 8x8 images, 4x4 label maps; maps are upsampled to the segmentation resolution
    model = tiny_model()
    result = dissect(model, "0", small_probe, quantile=0.05, progress=False)
    assert result.counts.truth[1:].sum() == small_probe.coverage().sum() * 16
    with torch.no_grad():
        maps = model[0](torch.from_numpy(small_probe.images).permute(0, 3, 1, 2).float() / 255)
    np.testing.assert_array_equal(result.image_max, maps.amax((2, 3)).numpy())


def test_toy_classifier_has_object_part_and_colour_detectors():
    """Per category, the committed toy classifier's last stage holds detectors (IoU > 0.04) for most objects and
    parts and for some colours (measured: 5/5 objects, 8/10 parts, 3 colours; no texture concept passes 0.04, as
    expected: the classifier does not need textures, see ``test_classifier_does_not_need_textures``)."""
    import linkviz
    from linkviz.worlds.toy import build_toy_probe

    probe = build_toy_probe(20, seed=3)
    result = dissect(linkviz.load_toy_world().classifier, "layer4", probe, progress=False)
    primary = probe.primary_categories()
    found = {category: int((result.iou[:, primary == k].max(0) > 0.04).sum())
             for k, category in enumerate(probe.categories)}
    assert found["object"] >= 4 and found["part"] >= 6 and found["color"] >= 1


# --- chunked, resumable, self-repairing cache --------------------------------------------------------------------


class _ForwardCounter:
    """Counts forward passes of a model (a hook on its first layer) and raises on a chosen one."""

    def __init__(self, model: nn.Module, *, fail_on_call: int | None = None) -> None:
        self.calls, self.fail_on_call = 0, fail_on_call
        self.handle = model[0].register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("killed")


def _assert_same_result(result: DissectionResult, reference: DissectionResult) -> None:
    np.testing.assert_array_equal(result.thresholds, reference.thresholds)
    np.testing.assert_array_equal(result.image_max, reference.image_max)
    for name in ("intersection", "activation", "truth", "active"):
        np.testing.assert_array_equal(getattr(result.counts, name), getattr(reference.counts, name), err_msg=name)
    np.testing.assert_allclose(result.iou, reference.iou, equal_nan=True)
    np.testing.assert_array_equal(result.top_images, reference.top_images)
    np.testing.assert_array_equal(result.top_maps, reference.top_maps)


@pytest.mark.parametrize("chunk_images", [1, 5, 7])
@pytest.mark.parametrize("keep_activations_bytes", [0, 2**28])
@pytest.mark.parametrize("mode", ["paper", "lite"])
def test_chunked_passes_equal_one_pass(square_probe, chunk_images, keep_activations_bytes, mode):
    model = tiny_model()
    options = {"quantile": 0.02, "batch_size": 3, "top_k": 4, "mode": mode, "progress": False}
    reference = dissect(model, "0", square_probe, chunk_images=len(square_probe), **options)
    chunked = dissect(model, "0", square_probe, chunk_images=chunk_images,
                      keep_activations_bytes=keep_activations_bytes, **options)
    _assert_same_result(chunked, reference)
    with torch.no_grad():
        maps = model[0](torch.from_numpy(square_probe.images).permute(0, 3, 1, 2).float() / 255)
    level = 0.98 if mode == "paper" else reference.level
    expected = np.quantile(maps.transpose(0, 1).reshape(3, -1).double().numpy(), level, axis=1)
    np.testing.assert_array_equal(chunked.thresholds, expected)


# 12 images, batches of 2, chunks of 4: each pass is 3 chunks x 2 forward calls (keep_activations_bytes=0)
_RESUMABLE = {"quantile": 0.05, "batch_size": 2, "chunk_images": 4, "keep_activations_bytes": 0, "top_k": 3,
              "progress": False}


@pytest.mark.parametrize(("fail_on_call", "rerun_calls"), [
    (4, 2 * 2 + 6),  # killed in chunk 1 of the threshold pass: chunks 1, 2 of it, then the whole tally pass
    (6 + 3, 2 * 2),  # killed in chunk 1 of the tally pass: only its chunks 1 and 2 are left
])
def test_killed_dissection_resumes_the_remaining_chunks(square_probe, tmp_path, fail_on_call, rerun_calls):
    reference = dissect(tiny_model(), "1", square_probe, **_RESUMABLE)
    model = tiny_model()
    counter = _ForwardCounter(model, fail_on_call=fail_on_call)
    with pytest.raises(RuntimeError, match="killed"):
        dissect(model, "1", square_probe, cache_dir=tmp_path, **_RESUMABLE)
    counter.calls, counter.fail_on_call = 0, None
    resumed = dissect(model, "1", square_probe, cache_dir=tmp_path, **_RESUMABLE)
    assert counter.calls == rerun_calls
    _assert_same_result(resumed, reference)
    counter.calls = 0
    _assert_same_result(dissect(model, "1", square_probe, cache_dir=tmp_path, **_RESUMABLE), reference)
    assert counter.calls == 0  # a finished entry is a read


def test_truncated_dissection_cache_is_repaired(square_probe, tmp_path):
    model = tiny_model()
    reference = dissect(model, "1", square_probe, cache_dir=tmp_path, **_RESUMABLE)
    (entry,) = (tmp_path / "dissection").iterdir()
    for chunk in (entry / "thresholds" / "chunk_000001.npz", entry / "tally" / "chunk_000000.npz"):
        chunk.write_bytes(chunk.read_bytes()[:-50])
    counter = _ForwardCounter(model)
    with pytest.warns(UserWarning, match="corrupt cache chunk .*chunk_00000[01].npz"):
        repaired = dissect(model, "1", square_probe, cache_dir=tmp_path, **_RESUMABLE)
    assert counter.calls == 2 + 2  # threshold chunk 1 and tally chunk 0, nothing else
    _assert_same_result(repaired, reference)


def test_a_local_engine_runs_in_this_process_with_its_threads(square_probe):
    from linkviz.engines import LocalEngine

    threads_seen = []

    class Recording(nn.Sequential):
        def forward(self, x):
            threads_seen.append(torch.get_num_threads())
            return super().forward(x)

    model = Recording(*tiny_model())
    plain = dissect(model, "1", square_probe, quantile=0.1, batch_size=4, progress=False)
    with torch.no_grad():
        torch.set_num_threads(2)
        threads_seen.clear()
        engined = dissect(model, "1", square_probe, quantile=0.1, batch_size=4, progress=False,
                          engine=LocalEngine(n_threads=1))
    assert set(threads_seen) == {1} and torch.get_num_threads() == 2  # the engine's threads, restored after
    np.testing.assert_array_equal(engined.thresholds, plain.thresholds)
    np.testing.assert_array_equal(engined.counts.intersection, plain.counts.intersection)
