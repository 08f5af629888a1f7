"""Render cache: keyed by its arguments, corrupt files detected and rendered again."""

import numpy as np
import pytest

from linkviz.worlds.toy import render_set


def test_cache_round_trip_and_corruption(tmp_path):
    first = render_set(3, seed=1, cache_dir=tmp_path, n_jobs=1)
    (path,) = tmp_path.glob("renders_*.npz")
    cached = render_set(3, seed=1, cache_dir=tmp_path, n_jobs=1)
    np.testing.assert_array_equal(cached.images, first.images)
    np.testing.assert_array_equal(cached.part_masks, first.part_masks)

    other = render_set(3, seed=2, cache_dir=tmp_path, n_jobs=1)
    assert len(list(tmp_path.glob("renders_*.npz"))) == 2
    assert not np.array_equal(other.images, first.images)

    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated file
    with pytest.warns(UserWarning, match="corrupt render cache"):
        again = render_set(3, seed=1, cache_dir=tmp_path, n_jobs=1)
    np.testing.assert_array_equal(again.images, first.images)


def test_parallel_rendering_equals_serial():
    serial = render_set(4, seed=3, n_jobs=1)
    from linkviz.worlds.toy import render_parallel

    parallel = render_parallel(serial.factors, n_jobs=2, chunk_size=7)
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.texture_masks, serial.texture_masks)


def test_bad_size_is_refused():
    with pytest.raises(ValueError, match="samples_per_class"):
        render_set(0, seed=0)


def test_uniform_background_hues_are_cached_apart_and_change_only_the_background(tmp_path):
    usual = render_set(3, seed=1, cache_dir=tmp_path, n_jobs=1)
    uniform = render_set(3, seed=1, uniform_background_hue=True, cache_dir=tmp_path, n_jobs=1)
    assert len(list(tmp_path.glob("renders_*.npz"))) == 2
    np.testing.assert_array_equal(uniform.part_masks, usual.part_masks)
    background = usual.part_masks == 0
    assert not np.array_equal(uniform.images[background], usual.images[background])
    np.testing.assert_array_equal(uniform.factors.background_hsv[:, 1:], usual.factors.background_hsv[:, 1:])
    cached = render_set(3, seed=1, uniform_background_hue=True, cache_dir=tmp_path, n_jobs=1)
    np.testing.assert_array_equal(cached.images, uniform.images)
