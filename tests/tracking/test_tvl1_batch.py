"""The batched TV-L1 solver: the fast preset against known motion, blocks of pairs, memory per batch."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from conftest import SIZE, bump_pair, shifted_pair, smooth_texture

from linkviz.tracking.tvl1 import tvl1_flow_batch

# The tuner's preset (linkviz.controllers.unit_tuning: FLOW_WARPS, FLOW_ITERATIONS) and the bound test_flow states
# for TV-L1 on a radial bump of up to 2.2 px. Measured on these fixtures (6 seeds): bumps 0.068 / 0.072, shifts
# 0.036 (1.4 px) / 0.086 (4.9 px); with skimage's 5 warps x 10 iterations 0.081 / 0.089 / 0.051 / 0.048.
FAST = {"num_warp": 2, "num_iter": 5}
EPE_BOUND = 0.15


def _known_motion(case: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if case.startswith("bump"):
        return bump_pair(float(case[4:]), seed=seed)
    shift = {"shift small": (0.6, -1.3), "shift large": (2.6, -4.2)}[case]
    reference, moving = shifted_pair(shift, seed=seed)
    return reference, moving, np.broadcast_to(np.array(shift)[:, None, None], (2, SIZE, SIZE))


@pytest.mark.parametrize("case", ["bump0.3", "bump-0.3", "shift small", "shift large"])
def test_fast_preset_recovers_known_motion_within_the_stated_error(case):
    triples = [_known_motion(case, seed) for seed in range(3)]
    references, movings = np.stack([t[0] for t in triples]), np.stack([t[1] for t in triples])
    true_flows = np.stack([t[2] for t in triples])
    flows = tvl1_flow_batch(references, movings, **FAST)
    moving_region = np.hypot(true_flows[:, 0], true_flows[:, 1]) > 0.1
    moving_region[:, :, :8] = moving_region[:, :, -8:] = False  # content leaves the frame at the border
    moving_region[:, :8] = moving_region[:, -8:] = False
    epe = np.hypot(*(flows - true_flows).transpose(1, 0, 2, 3))[moving_region].mean()
    assert epe < EPE_BOUND, f"{case}: mean EPE {epe:.3f} px with {FAST}"


def _batch(n: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    references = np.stack([smooth_texture(size, seed=seed) for seed in range(n)]).astype(np.float32)
    movings = np.stack([np.roll(reference, seed % 3 - 1, axis=seed % 2) for seed, reference in enumerate(references)])
    return references, movings


def test_pairs_solved_in_blocks_equal_pairs_solved_alone():
    references, movings = _batch(20)  # more pairs than one block at 64 px
    together = tvl1_flow_batch(references, movings, **FAST)
    alone = np.concatenate([tvl1_flow_batch(references[i:i + 1], movings[i:i + 1], **FAST) for i in range(20)])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert tvl1_flow_batch(references[:0], movings[:0]).shape == (0, 2, 64, 64)


def test_solver_memory_does_not_grow_with_the_batch():
    """The solver's working arrays are a block's, not the batch's: 8x the pairs must not take 8x the memory."""
    peaks = {}
    for n in (16, 128):
        references, movings = _batch(n)
        tracemalloc.start()
        try:
            tvl1_flow_batch(references, movings, num_warp=1, num_iter=1)
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # measured: 1.35x with blocks of 16 pairs (the flows themselves grow 8x, 4 MiB at 128 pairs); 8.0x without
    assert peaks[128] < 3 * peaks[16], f"peak {peaks[16] / 2**20:.1f} MiB at 16 pairs, {peaks[128] / 2**20:.1f} at 128"
