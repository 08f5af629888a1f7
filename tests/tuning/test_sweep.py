"""Tests for linkviz.tuning.sweep: content, resuming after a crash, corrupt chunks, cache identity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from linkviz.cache import CacheMismatchError
from linkviz.images import to_uint8
from linkviz.linking.link import LinearLink
from linkviz.tuning import SweepResult, UnitStats, run_sweep, tuned_latents

D, W_DIM, N_SEEDS, RESOLUTION = 5, 4, 3, 8


class CountingGenerator:
    """synthesis = tanh(linear(ws[:, 0])) as [N, 3, 8, 8]; counts calls and can fail on a chosen one."""

    num_ws = 2
    w_dim = W_DIM
    z_dim = W_DIM
    c_dim = 0
    img_resolution = RESOLUTION

    def __init__(self, *, fail_on_call: int | None = None) -> None:
        torch.manual_seed(0)
        self.module = nn.Linear(W_DIM, 3 * RESOLUTION * RESOLUTION)
        self.calls = 0
        self.fail_on_call = fail_on_call

    @property
    def synthesis_module(self) -> nn.Module:
        return self.module

    def synthesis(self, ws: Tensor) -> Tensor:
        assert ws.shape[1:] == (self.num_ws, self.w_dim)
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("killed")
        return torch.tanh(self.module(ws[:, 0])).reshape(-1, 3, RESOLUTION, RESOLUTION)


@pytest.fixture
def setting():
    rng = np.random.default_rng(1)
    link = LinearLink(weight=rng.normal(size=(W_DIM, D)), bias=rng.normal(size=W_DIM))
    r_base = torch.as_tensor(rng.uniform(0, 2, size=(N_SEEDS, D)), dtype=torch.float32)
    stats = UnitStats.from_activations(rng.uniform(0, 2, size=(20, D)))
    return link, r_base, stats


def _sweep(setting, generator, out_dir, **options):
    link, r_base, stats = setting
    options = {"units_per_chunk": 2, "batch_size": 10, **options}  # 15 images per unit: 3 + 3 + 2 calls
    return run_sweep(link, generator, r_base, stats=stats, out_dir=out_dir, progress=False, **options)


def test_sweep_content(setting, tmp_path):
    link, r_base, _ = setting
    generator = CountingGenerator()
    result = _sweep(setting, generator, tmp_path / "sweep", store_w=True)
    assert generator.calls == 8
    assert result.units == (0, 1, 2, 3, 4) and (result.n_seeds, result.n_steps) == (3, 5)
    for unit in result.units:
        images, values = result.images(unit), result.values(unit)
        assert images.shape == (3, 5, 8, 8, 3) and images.dtype == np.uint8
        assert values.shape == (3, 5)
        np.testing.assert_allclose(result.latents(unit), tuned_latents(link, r_base, unit, values).numpy(),
                                   rtol=1e-5, atol=1e-6)
        baseline = result.baseline_step(unit)
        np.testing.assert_array_equal(values[np.arange(3), baseline], r_base[:, unit].numpy())
    # The baseline step is the unperturbed image: G(link(r_base)).
    w = link.to_w(r_base)
    unperturbed = to_uint8(torch.tanh(generator.module(w)).reshape(-1, 3, 8, 8).detach().numpy())
    np.testing.assert_array_equal(result.images(3)[np.arange(3), result.baseline_step(3)], unperturbed)
    frame = result.to_frame()
    assert list(frame.columns) == ["unit", "seed", "step", "value", "is_baseline"]
    assert len(frame) == 5 * 3 * 5 and frame["is_baseline"].sum() == 5 * 3
    np.testing.assert_allclose(frame.query("unit == 2 and seed == 1")["value"], result.values(2)[1])
    assert SweepResult(tmp_path / "sweep").units == result.units


def test_killed_sweep_resumes_without_recomputing(setting, tmp_path):
    reference = _sweep(setting, CountingGenerator(), tmp_path / "reference")
    generator = CountingGenerator(fail_on_call=5)  # second batch of chunk 1: chunk 0 is on disk
    with pytest.raises(RuntimeError, match="killed"):
        _sweep(setting, generator, tmp_path / "sweep")
    with pytest.raises(ValueError, match="unfinished"):
        SweepResult(tmp_path / "sweep")
    generator.calls, generator.fail_on_call = 0, None
    result = _sweep(setting, generator, tmp_path / "sweep")
    assert generator.calls == 3 + 2  # only chunks 1 and 2
    for unit in reference.units:
        np.testing.assert_array_equal(result.images(unit), reference.images(unit))
        np.testing.assert_array_equal(result.values(unit), reference.values(unit))
    assert result.to_frame().equals(reference.to_frame())
    generator.calls = 0
    _sweep(setting, generator, tmp_path / "sweep")  # a finished sweep computes nothing
    assert generator.calls == 0


def test_corrupt_chunk_is_recomputed(setting, tmp_path):
    reference = _sweep(setting, CountingGenerator(), tmp_path / "sweep")
    expected = {unit: reference.images(unit).copy() for unit in reference.units}
    chunk = tmp_path / "sweep" / "chunk_000001.npz"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    generator = CountingGenerator()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _sweep(setting, generator, tmp_path / "sweep")
    assert any("corrupt" in str(w.message) for w in caught)
    assert generator.calls == 3
    for unit, images in expected.items():
        np.testing.assert_array_equal(result.images(unit), images)


def test_other_arguments_are_refused(setting, tmp_path):
    _sweep(setting, CountingGenerator(), tmp_path / "sweep", units=[0, 1])
    with pytest.raises(CacheMismatchError, match="n_steps"):
        _sweep(setting, CountingGenerator(), tmp_path / "sweep", units=[0, 1], n_steps=7)
    link, r_base, stats = setting
    with pytest.raises(CacheMismatchError, match="r_base"):
        run_sweep(link, CountingGenerator(), r_base + 1, stats=stats, out_dir=tmp_path / "sweep", units=[0, 1],
                  units_per_chunk=2, batch_size=10, progress=False)


def test_reference_mode(setting, tmp_path):
    stats = setting[2]
    result = _sweep(setting, CountingGenerator(), tmp_path / "sweep", units=[4, 1], mode="reference")
    assert result.n_steps == 3 and result.units == (4, 1)
    np.testing.assert_allclose(result.values(1), np.tile(np.linspace(stats.min[1], stats.max[1], 3), (3, 1)),
                               rtol=1e-6)
    with pytest.raises(KeyError, match="not in this sweep"):
        result.images(0)
    with pytest.raises(ValueError, match="store_w"):
        result.latents(1)


def test_bad_input(setting, tmp_path):
    link, r_base, stats = setting
    with pytest.raises(IndexError, match="D=5"):
        _sweep(setting, CountingGenerator(), tmp_path / "a", units=[0, 5])
    bad = r_base.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="1 NaN"):
        run_sweep(link, CountingGenerator(), bad, stats=stats, out_dir=tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="D=5"):
        run_sweep(link, CountingGenerator(), r_base[:, :4], stats=stats, out_dir=tmp_path / "c", progress=False)
    assert not (tmp_path / "b").exists()


def test_non_integer_units_are_refused_not_truncated(setting, tmp_path):
    """Unit 3.7 used to sweep unit 3; now it raises before anything is rendered or written."""
    generator = CountingGenerator()
    for units in ([3.7], [0, 2.0], 3.7):
        with pytest.raises(ValueError, match="integer"):
            _sweep(setting, generator, tmp_path / "sweep", units=units)
    assert generator.calls == 0 and not (tmp_path / "sweep").exists()
    result = _sweep(setting, generator, tmp_path / "sweep", units=[np.int64(3)])  # numpy integers are fine
    assert result.units == (3,)


def test_r_base_is_checked_by_the_shared_activation_check(setting, tmp_path):
    link, r_base, stats = setting
    with pytest.raises(ValueError, match=r"r_base must have shape \[N >= 1, D=5\]; got \[0, 5\]"):
        run_sweep(link, CountingGenerator(), r_base[:0], stats=stats, out_dir=tmp_path / "a", progress=False)
    bad = r_base.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="r_base holds 1 NaN or infinite values out of 15"):
        run_sweep(link, CountingGenerator(), bad, stats=stats, out_dir=tmp_path / "b", progress=False)


def test_to_frame_on_a_truncated_chunk_names_the_file(setting, tmp_path):
    """to_frame() used to raise a bare BadZipFile without a path; it now says which chunk and how to repair it."""
    from linkviz.cache import CorruptChunkError

    result = _sweep(setting, CountingGenerator(), tmp_path / "sweep")
    chunk = tmp_path / "sweep" / "chunk_000001.npz"
    chunk.write_bytes(chunk.read_bytes()[:-100])
    with pytest.raises(CorruptChunkError, match=r"chunk_000001\.npz.*rerun the computation with the same"):
        result.to_frame()
    with pytest.raises(CorruptChunkError, match=r"chunk_000001\.npz"):
        result.images(2)
