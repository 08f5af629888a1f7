"""Device auto-selection, reduced precision within stated tolerances, and the deterministic mode."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import linkviz
from linkviz.devices import best_device, deterministic, precision_context, resolve_device, run_device
from linkviz.linking import LinearLink, UnitStats
from linkviz.tuning import run_sweep


def test_auto_takes_the_best_device_present():
    assert resolve_device("auto") == resolve_device(None) == best_device()
    if not torch.cuda.is_available():
        assert best_device().type in ("cpu", "mps")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_missing_gpu_is_named_with_what_to_do():
    with pytest.raises(ValueError, match="sees no CUDA GPU; use device='auto'"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="is not a device"):
        resolve_device("gpu please")


def test_a_job_runs_where_its_model_is_or_says_why_not():
    module = torch.nn.Linear(2, 2)
    assert run_device(None, module) == torch.device("cpu")
    with pytest.raises(ValueError, match=r"classifier's weights are on cpu \(torch.float32\) but device='meta'"):
        run_device("meta", module, name="classifier")


def test_precision_names_are_checked():
    with pytest.raises(ValueError, match="precision must be one of"):
        precision_context("cpu", "int8")


def test_deterministic_mode_repeats_draws_and_restores_the_global_state():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    flags = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    had_env = "CUBLAS_WORKSPACE_CONFIG" in os.environ
    draws = []
    for _ in range(2):
        with deterministic(7) as generator:
            assert torch.are_deterministic_algorithms_enabled()
            draws.append((torch.randn(5, generator=generator), torch.randn(5)))
    torch.testing.assert_close(draws[0][0], draws[1][0], rtol=0, atol=0)
    torch.testing.assert_close(draws[0][1], draws[1][1], rtol=0, atol=0)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == flags
    assert ("CUBLAS_WORKSPACE_CONFIG" in os.environ) == had_env


@pytest.mark.timeout(600)
def test_a_bfloat16_sweep_stays_within_the_stated_tolerance_of_float32(tmp_path):
    """The tolerance run_sweep's docstring states for the toy world: 0.2 grey levels on average (bound 1), 99%
    of values within 1.5 (bound 4), none beyond ~10 (bound 24). Few images: bfloat16 is slow on CPUs."""
    generator = linkviz.load_toy_world().generator
    rng = np.random.default_rng(0)
    link = LinearLink(weight=rng.normal(0, 0.1, size=(generator.w_dim, 3)).astype(np.float32),
                      bias=generator.mapping.w_avg[1].numpy())
    stats = UnitStats.from_activations(rng.gamma(2.0, 1.0, size=(20, 3)).astype(np.float32))
    r_base = stats.mean[None].astype(np.float32)
    options = {"stats": stats, "units": [1], "n_steps": 2, "mode": "reference", "progress": False}
    full = run_sweep(link, generator, r_base, out_dir=tmp_path / "float32", **options).images(1)
    half = run_sweep(link, generator, r_base, out_dir=tmp_path / "bfloat16", precision="bfloat16",
                     **options).images(1)
    difference = np.abs(full.astype(float) - half.astype(float))
    assert difference.mean() <= 1 and np.percentile(difference, 99) <= 4 and difference.max() <= 24
    assert difference.max() > 0  # it did run in reduced precision


def test_worlds_load_on_the_best_device_and_jobs_follow_their_models(tmp_path):
    from linkviz.controllers import ExploreData

    world = linkviz.load_toy_world()  # device="auto"
    assert next(world.generator.parameters()).device.type == best_device().type
    assert ExploreData(world, cache_dir=tmp_path).device == run_device(None, world.generator)
    with pytest.raises(ValueError, match="generator's weights are on"):
        ExploreData(world, cache_dir=tmp_path, device="meta")
