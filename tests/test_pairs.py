"""Tests for linkviz.pairs with a tiny fake generator and classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.cache import CacheMismatchError
from linkviz.pairs import PairSet, latents_from_seeds, pair_seeds, sample_pairs

RESOLUTION = 8
N_CLASSES = 4
CLASSES = [0, 1, 3]


class FakeGenerator(nn.Module):
    """Linear mapping and tanh-of-linear synthesis with the StyleGAN calling convention."""

    z_dim = 6
    w_dim = 5
    num_ws = 3
    img_resolution = RESOLUTION

    def __init__(self, seed: int = 0, c_dim: int = N_CLASSES) -> None:
        super().__init__()
        self.c_dim = c_dim
        torch.manual_seed(seed)
        self.map = nn.Linear(self.z_dim + c_dim, self.w_dim)
        self.synth = nn.Linear(self.w_dim, 3 * RESOLUTION * RESOLUTION)
        self.mapping_calls = 0

    def mapping(self, z, c, truncation_psi=1.0):
        self.mapping_calls += 1
        assert (c is None) == (self.c_dim == 0)
        x = z if c is None else torch.cat([z, 3 * c], dim=1)
        w = self.map(x) * truncation_psi
        return w[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws):
        assert torch.equal(ws[:, 0], ws[:, -1])
        return torch.tanh(self.synth(ws[:, 0])).reshape(-1, 3, RESOLUTION, RESOLUTION)


class FakeClassifier:
    """Classifier wrapper: r = relu(linear(image)), logits = linear(r)."""

    def __init__(self, seed: int = 1, *, fail_on_call: int | None = None, nan: bool = False) -> None:
        torch.manual_seed(seed)
        self.module = nn.ModuleDict(
            {"features": nn.Linear(3 * RESOLUTION * RESOLUTION, 7), "head": nn.Linear(7, N_CLASSES)}
        )
        self.fail_on_call = fail_on_call
        self.nan = nan
        self.calls = 0

    def forward_generated(self, images):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("simulated crash")
        assert images.shape[1:] == (3, RESOLUTION, RESOLUTION)
        with torch.no_grad():
            r = torch.relu(self.module["features"](images.flatten(1)))
            if self.nan:
                r[0, :2] = float("nan")
            return self.module["head"](r), r


def _sample(generator=None, classifier=None, **options) -> PairSet:
    arguments = {"classes": CLASSES, "samples_per_class": 6, "seed": 3, "batch_size": 5, "progress": False}
    arguments.update(options)
    return sample_pairs(generator or FakeGenerator(), classifier or FakeClassifier(), **arguments)


def _assert_same(a: PairSet, b: PairSet) -> None:
    for name in ("w", "r", "labels", "predicted", "accepted", "seeds"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _entries(root: Path) -> list[Path]:
    return sorted((root / "pairs").iterdir())


# --- seeds and sampling --------------------------------------------------------------------------


def test_shapes_and_order():
    pairs = _sample()
    n = len(CLASSES) * 6
    assert len(pairs) == n
    assert pairs.w.shape == (n, FakeGenerator.w_dim)
    assert pairs.r.shape == (n, 7)
    np.testing.assert_array_equal(pairs.labels, np.repeat(CLASSES, 6))
    for name in ("labels", "predicted", "seeds"):
        assert getattr(pairs, name).dtype == np.int64
    assert pairs.accepted.dtype == bool


def test_seeds_unique_and_z_rows_unique():
    pairs = _sample(samples_per_class=50, batch_size=64)
    assert len(np.unique(pairs.seeds)) == len(pairs)
    assert pairs.seeds.min() >= 0 and pairs.seeds.max() < 2**32  # torch seeds only use 32 bits
    z = latents_from_seeds(pairs.seeds, z_dim=FakeGenerator.z_dim).numpy()
    assert len(np.unique(z, axis=0)) == len(pairs)
    assert len(np.unique(pairs.w, axis=0)) == len(pairs)


def test_reproducible_and_seed_dependent():
    first, again, other = _sample(), _sample(), _sample(seed=4)
    _assert_same(first, again)
    assert not np.intersect1d(first.seeds, other.seeds).size
    assert not np.allclose(first.w, other.w)


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_independent_of_batch_size(batch_size):
    reference = _sample(batch_size=5)
    pairs = _sample(batch_size=batch_size)
    np.testing.assert_array_equal(pairs.seeds, reference.seeds)
    np.testing.assert_allclose(pairs.w, reference.w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pairs.r, reference.r, rtol=1e-5, atol=1e-6)


def test_seed_limits():
    with pytest.raises(ValueError):
        pair_seeds(0, classes=[4096], samples_per_class=1)
    with pytest.raises(ValueError):
        pair_seeds(0, classes=[0], samples_per_class=2**20 + 1)
    with pytest.raises(ValueError):
        pair_seeds(-1, classes=[0], samples_per_class=1)
    _, seeds = pair_seeds(0, classes=[0, 4095], samples_per_class=3)
    assert len(np.unique(seeds)) == len(seeds)


def test_seed_of_a_sample_is_stable():
    labels, seeds = pair_seeds(3, classes=[0, 1, 3], samples_per_class=6)
    _, more = pair_seeds(3, classes=[3], samples_per_class=10)
    np.testing.assert_array_equal(seeds[labels == 3], more[:6])


def test_acceptance_flags():
    pairs = _sample(samples_per_class=20, batch_size=32)
    np.testing.assert_array_equal(pairs.accepted, pairs.predicted == pairs.labels)
    assert pairs.acceptance_rate == pytest.approx(pairs.accepted.mean())
    assert 0 < pairs.acceptance_rate < 1
    by_class = pairs.acceptance_by_class()
    assert set(by_class) == set(CLASSES)
    assert np.mean(list(by_class.values())) == pytest.approx(pairs.acceptance_rate)
    kept = pairs.accepted_only()
    assert len(kept) == pairs.accepted.sum() and kept.accepted.all()
    frame = pairs.to_frame()
    assert list(frame.columns) == ["seed", "label", "predicted", "accepted"]
    assert len(frame) == len(pairs) and frame["accepted"].mean() == pytest.approx(pairs.acceptance_rate)


def test_unconditional_generator():
    pairs = _sample(FakeGenerator(c_dim=0), classes=[0])
    assert (pairs.labels == 0).all()
    with pytest.raises(ValueError):
        _sample(FakeGenerator(c_dim=0), classes=[1])


@pytest.mark.parametrize(
    "options",
    [{"classes": [0, 4]}, {"classes": [-1]}, {"classes": [1, 1]}, {"classes": []},
     {"samples_per_class": 0}, {"batch_size": 0}],
)
def test_invalid_arguments(options):
    with pytest.raises(ValueError):
        _sample(**options)


def test_non_finite_r_raises_with_count():
    with pytest.raises(ValueError, match="2 of"):
        _sample(classifier=FakeClassifier(nan=True))


def test_progress_bar_runs():
    assert len(_sample(progress=True)) == 18


# --- cache ---------------------------------------------------------------------------------------


def test_cache_hit_skips_generator(tmp_path):
    generator = FakeGenerator()
    first = _sample(generator, cache_dir=tmp_path)
    assert generator.mapping_calls == 4
    again_generator, again_classifier = FakeGenerator(), FakeClassifier()
    again = _sample(again_generator, again_classifier, cache_dir=tmp_path)
    assert again_generator.mapping_calls == 0 and again_classifier.calls == 0
    _assert_same(first, again)
    _assert_same(first, _sample())
    assert len(_entries(tmp_path)) == 1
    assert (_entries(tmp_path)[0] / "complete.json").exists()


@pytest.mark.parametrize(
    "change",
    [
        {"truncation_psi": 0.5},
        {"seed": 9},
        {"samples_per_class": 7},
        {"classes": [0, 1]},
        {"batch_size": 6},
        {"generator": "weights"},
        {"classifier": "weights"},
    ],
)
def test_any_change_gives_new_entry(tmp_path, change):
    _sample(cache_dir=tmp_path)
    generator, classifier = FakeGenerator(), FakeClassifier()
    if change.pop("generator", None):
        with torch.no_grad():
            generator.synth.bias[0] += 0.01
    if change.pop("classifier", None):
        with torch.no_grad():
            classifier.module["head"].bias[0] += 0.01
    _sample(generator, classifier, cache_dir=tmp_path, **change)
    assert generator.mapping_calls > 0 and classifier.calls > 0
    assert len(_entries(tmp_path)) == 2


def test_tampered_meta_raises(tmp_path):
    _sample(cache_dir=tmp_path)
    meta_path = _entries(tmp_path)[0] / "meta.json"
    meta_path.write_text(meta_path.read_text().replace("0.7", "0.75"))
    with pytest.raises(CacheMismatchError):
        _sample(cache_dir=tmp_path)


def test_resume_after_crash(tmp_path):
    crashing = FakeClassifier(fail_on_call=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _sample(classifier=crashing, cache_dir=tmp_path)
    generator, classifier = FakeGenerator(), FakeClassifier()
    resumed = _sample(generator, classifier, cache_dir=tmp_path)
    assert classifier.calls == 2 and generator.mapping_calls == 2  # batches 2 and 3 of 0..3
    _assert_same(resumed, _sample())


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_corrupt_chunk_recomputed(tmp_path, how):
    clean = _sample(cache_dir=tmp_path)
    path = _entries(tmp_path)[0] / "chunk_000001.npz"
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    generator = FakeGenerator()
    with pytest.warns(UserWarning, match="chunk_000001"):
        repaired = _sample(generator, cache_dir=tmp_path)
    assert generator.mapping_calls == 1
    _assert_same(repaired, clean)
