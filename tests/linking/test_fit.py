"""Tests for linkviz.linking.fit and linkviz.linking.mlp against planted ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, Ridge

from linkviz.linking import LinearLink, LinkFit, MLPLink, fit_linear_link, fit_mlp_link


def _planted(n: int, d: int, w_dim: int, *, noise: float, seed: int = 0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(w_dim, d))
    bias = rng.normal(size=w_dim)
    r = rng.normal(loc=2.0, size=(n, d))  # non-zero mean, so the intercept matters
    w = r @ weight.T + bias + noise * rng.normal(size=(n, w_dim))
    return r.astype(dtype), w.astype(dtype), weight, bias


def _kfold_mse_sklearn(r, w, alpha, *, cv, seed):
    folds = np.array_split(np.random.default_rng(seed).permutation(len(r)), cv)
    scores = []
    for held_out in folds:
        train = np.setdiff1d(np.arange(len(r)), held_out)
        model = Ridge(alpha=alpha).fit(r[train], w[train])
        scores.append(np.mean((model.predict(r[held_out]) - w[held_out]) ** 2))
    return float(np.mean(scores))


@pytest.mark.parametrize("method", ["ols", "ridge"])
def test_recovers_planted_weight_and_bias(method):
    r, w, weight, bias = _planted(200, 6, 3, noise=1e-6)
    fit = fit_linear_link(r, w, method=method, alphas=[1e-8, 1e-4, 1.0])
    assert isinstance(fit, LinkFit) and isinstance(fit.link, LinearLink)
    np.testing.assert_allclose(fit.link.weight, weight, atol=1e-4)
    np.testing.assert_allclose(fit.link.bias, bias, atol=1e-3)
    assert fit.method == method
    assert fit.train_mse < 1e-10


def test_ols_and_fixed_alpha_ridge_match_sklearn():
    r, w, _, _ = _planted(80, 5, 4, noise=0.5, seed=1)
    ols = fit_linear_link(r, w, method="ols")
    reference = LinearRegression().fit(r, w)
    np.testing.assert_allclose(ols.link.weight, reference.coef_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ols.link.bias, reference.intercept_, rtol=1e-5, atol=1e-5)
    assert ols.alpha == 0.0 and list(ols.cv_scores) == [0.0]

    ridge = fit_linear_link(r, w, method="ridge", alphas=[7.0])
    reference = Ridge(alpha=7.0).fit(r, w)
    np.testing.assert_allclose(ridge.link.weight, reference.coef_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ridge.link.bias, reference.intercept_, rtol=1e-5, atol=1e-5)
    direct_mse = np.mean((ridge.link.predict(r) - w) ** 2)
    assert ridge.train_mse == pytest.approx(direct_mse, rel=1e-4)


def test_cv_scores_equal_explicit_kfold_and_alpha_is_one_of_the_given():
    r, w, _, _ = _planted(60, 8, 3, noise=2.0, seed=2)
    alphas = [0.01, 1.0, 30.0, 1000.0]
    fit = fit_linear_link(r, w, alphas=alphas, cv=4, seed=3)
    assert list(fit.cv_scores) == alphas
    assert fit.alpha in alphas
    assert fit.cv_scores[fit.alpha] == min(fit.cv_scores.values())
    for alpha in alphas:
        expected = _kfold_mse_sklearn(r, w, alpha, cv=4, seed=3)
        assert fit.cv_scores[alpha] == pytest.approx(expected, rel=1e-6)
    table = fit.to_frame()
    assert list(table.columns) == ["alpha", "cv_mse", "selected"]
    assert table["selected"].sum() == 1


def test_noisier_data_gets_a_larger_penalty():
    alphas = np.logspace(-3, 4, 15)
    clean = fit_linear_link(*_planted(60, 20, 3, noise=0.01, seed=4)[:2], alphas=alphas)
    noisy = fit_linear_link(*_planted(60, 20, 3, noise=20.0, seed=4)[:2], alphas=alphas)
    assert noisy.alpha > clean.alpha


def test_default_alpha_grid_is_relative_to_the_spread_of_r():
    r, w, _, _ = _planted(40, 20, 2, noise=3.0, seed=5)
    fit = fit_linear_link(r, w)
    scaled = fit_linear_link(10 * r, w)
    assert len(fit.cv_scores) == 17
    np.testing.assert_allclose(list(scaled.cv_scores), 100 * np.array(list(fit.cv_scores)))
    np.testing.assert_allclose(list(scaled.cv_scores.values()), list(fit.cv_scores.values()), rtol=1e-6)
    assert scaled.alpha == pytest.approx(100 * fit.alpha)


def test_ols_with_too_few_pairs_warns_and_falls_back_to_ridge():
    r, w, _, _ = _planted(12, 20, 3, noise=0.1, seed=6)
    with pytest.warns(UserWarning, match=r"too few pairs for OLS: N=12 <= D\+1=21"):
        fit = fit_linear_link(r, w, method="ols", cv=3)
    assert fit.method == "ridge" and fit.alpha > 0
    assert np.isfinite(fit.link.weight).all()


def test_constant_unit_gets_zero_weight_with_float32_input():
    r, w, weight, _ = _planted(100, 4, 2, noise=0.0, seed=7, dtype=np.float32)
    r = np.concatenate([r, np.full((100, 1), 3.0, dtype=np.float32)], axis=1)  # a dead unit
    fit = fit_linear_link(r, w, method="ols")
    np.testing.assert_allclose(fit.link.weight[:, :4], weight, atol=1e-3)
    assert np.all(fit.link.weight[:, 4] == 0)
    np.testing.assert_allclose(fit.link.predict(r), w, atol=1e-3)


def test_accepts_torch_tensors():
    r, w, weight, _ = _planted(50, 3, 2, noise=1e-6, seed=8)
    fit = fit_linear_link(torch.from_numpy(r), torch.from_numpy(w), method="ols")
    np.testing.assert_allclose(fit.link.weight, weight, atol=1e-4)


@pytest.mark.parametrize(
    ("r", "w", "kwargs", "message"),
    [
        (np.zeros((10, 3)), np.zeros((9, 2)), {}, "r has 10 rows but w has 9"),
        (np.zeros(10), np.zeros((10, 2)), {}, r"r must be a 2-D array \(N, dim\), got shape \(10,\)"),
        (np.zeros((10, 3)), np.zeros((10, 2, 1)), {}, "w must be a 2-D array"),
        (np.where(np.eye(10, 3) > 0, np.nan, 0.0), np.zeros((10, 2)), {}, "r contains 3 non-finite values"),
        (np.zeros((10, 3)), np.full((10, 2), np.inf), {}, "w contains 20 non-finite values"),
        (np.zeros((4, 3)), np.zeros((4, 2)), {}, "need at least cv=5 pairs for 5-fold cross-validation, got 4"),
        (np.zeros((10, 3)), np.zeros((10, 2)), {"cv": 1}, "cv must be an int >= 2"),
        (np.zeros((10, 3)), np.zeros((10, 2)), {"method": "lasso"}, "method must be 'ols' or 'ridge'"),
        (np.zeros((10, 3)), np.zeros((10, 2)), {"alphas": [1.0, -1.0]}, "alphas must be finite and >= 0"),
        (np.zeros((10, 3)), np.zeros((10, 2)), {"alphas": []}, "alphas must be a non-empty"),
        (np.ones((10, 3)), np.zeros((10, 2)), {}, "every unit of r is constant"),
    ],
)
def test_bad_input_raises_clear_errors(r, w, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_linear_link(r, w, **kwargs)


def test_duplicated_pairs_share_a_fold_and_warn():
    # Each pair copied 5 times, shuffled: with copies split across folds the held-out error rewards
    # interpolation and CV picks a tiny penalty. Ridge on 5 copies with penalty 5a is ridge on the distinct
    # pairs with penalty a, so the per-copy penalty must match the de-duplicated choice up to CV noise.
    r, w, _, _ = _planted(60, 40, 3, noise=5.0, seed=11)
    copies = 5
    order = np.random.default_rng(12).permutation(copies * len(r))
    r_copied, w_copied = np.repeat(r, copies, axis=0)[order], np.repeat(w, copies, axis=0)[order]
    distinct = fit_linear_link(r, w)
    with pytest.warns(UserWarning, match=r"found 240 exact duplicate \(r, w\) pairs among N=300 \(only 60 distinct\)"):
        copied = fit_linear_link(r_copied, w_copied)
    assert 0.1 < (copied.alpha / copies) / distinct.alpha < 10


def test_too_few_distinct_pairs_for_the_folds_raise():
    r, w, _, _ = _planted(3, 2, 2, noise=1.0, seed=13)
    with pytest.warns(UserWarning, match="exact duplicate"), \
            pytest.raises(ValueError, match=r"only 3 distinct \(r, w\) pairs among 30.*needs at least cv=5"):
        fit_linear_link(np.tile(r, (10, 1)), np.tile(w, (10, 1)))


def _nonlinear_pairs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    r = rng.uniform(-2, 2, size=(n, 3)).astype(np.float32)
    w = np.stack([np.sin(2 * r[:, 0]) + r[:, 1], r[:, 1] * r[:, 2]], axis=1).astype(np.float32)
    return r, w


def test_mlp_link_beats_linear_on_a_nonlinear_map():
    r, w = _nonlinear_pairs(400, seed=0)
    r_test, w_test = _nonlinear_pairs(300, seed=1)
    mlp = fit_mlp_link(r, w, hidden=64, epochs=30, batch_size=64, learning_rate=1e-2, seed=0, progress=False)
    linear = fit_linear_link(r, w, method="ols").link
    mlp_mse = np.mean((mlp.predict(r_test) - w_test) ** 2)
    linear_mse = np.mean((linear.predict(r_test) - w_test) ** 2)
    assert isinstance(mlp, MLPLink) and not mlp.training
    assert mlp_mse < 0.2 * linear_mse


def test_mlp_link_is_seeded_and_differentiable():
    r, w = _nonlinear_pairs(64, seed=2)
    first = fit_mlp_link(r, w, hidden=8, epochs=2, batch_size=16, seed=3, progress=False)
    second = fit_mlp_link(r, w, hidden=8, epochs=2, batch_size=16, seed=3, progress=False)
    np.testing.assert_array_equal(first.predict(r), second.predict(r))
    r_tensor = torch.tensor(r[:5], requires_grad=True)
    first.to_w(r_tensor).sum().backward()
    assert r_tensor.grad is not None and r_tensor.grad.abs().sum() > 0
    assert first.predict(r).shape == (64, 2) and first.predict(r).dtype == np.float32
    with pytest.raises(ValueError, match=r"r must have shape \(N, 3\)"):
        first.to_w(torch.zeros(2, 4))


def test_mlp_link_rejects_bad_pairs():
    with pytest.raises(ValueError, match="r has 5 rows but w has 4"):
        fit_mlp_link(np.zeros((5, 2)), np.zeros((4, 2)), progress=False)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        fit_mlp_link(np.zeros((5, 2)), np.zeros((5, 2)), epochs=0, progress=False)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_threads_limit_blas_during_the_fit_only(monkeypatch):
    import linkviz.linking.fit as fit_module
    r, w, _, _ = _planted(80, 6, 3, noise=0.5, seed=14)
    seen: list[list[int]] = []
    held_out_mse = fit_module.primal_held_out_mse

    def recording(*args, **kwargs):
        seen.append(_blas_threads())
        return held_out_mse(*args, **kwargs)

    monkeypatch.setattr(fit_module, "primal_held_out_mse", recording)
    before = _blas_threads()
    limited = fit_linear_link(r, w, alphas=[0.1, 10.0], threads=1)
    assert seen and all(threads == [1] * len(threads) for threads in seen)
    assert _blas_threads() == before
    free = fit_linear_link(r, w, alphas=[0.1, 10.0])
    assert limited.alpha == free.alpha
    np.testing.assert_allclose(limited.link.weight, free.link.weight, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="threads must be a positive int or None.*got 0"):
        fit_linear_link(r, w, threads=0)


def test_hash_collisions_fall_back_to_exact_duplicate_grouping(monkeypatch):
    import linkviz.linking.fit as fit_module
    r, w, _, _ = _planted(50, 4, 2, noise=1.0, seed=15)
    expected = fit_linear_link(r, w, alphas=[0.1, 1.0, 10.0])
    monkeypatch.setattr(fit_module, "_row_hashes", lambda array: np.zeros(len(array), dtype=np.int64))
    groups, n_duplicates = fit_module._duplicate_groups(r, w)
    assert n_duplicates == 0 and sorted(groups) == list(range(50))
    collided = fit_linear_link(r, w, alphas=[0.1, 1.0, 10.0])
    assert collided.cv_scores == expected.cv_scores
    with pytest.warns(UserWarning, match=r"found 50 exact duplicate"):
        fit_linear_link(np.tile(r, (2, 1)), np.tile(w, (2, 1)), alphas=[1.0])


def test_fewer_pairs_than_units_take_the_kernel_form_with_the_same_errors_and_fit():
    """With N < D (200 face pairs, r of 2048 values) each fold decomposes the N x N kernel instead of the D x D
    Gram matrix; both forms give the same held-out errors and so the same alpha and link."""
    from linkviz.linking.fit import _cv_folds, _duplicate_groups, _fold_moments, _noise_floor
    from linkviz.linking.ridge_cv import dual_held_out_mse, primal_held_out_mse

    rng = np.random.default_rng(4)
    r = rng.gamma(1.5, 1.0, size=(60, 150)).astype(np.float32)
    w = (r @ rng.normal(size=(150, 7)) * 0.1 + rng.normal(size=(60, 7))).astype(np.float32)
    groups, duplicates = _duplicate_groups(r, w)
    folds = _cv_folds(groups, duplicates, 5, 0)
    r_shift, w_shift = r.mean(0, dtype=np.float64), w.mean(0, dtype=np.float64)
    moments = _fold_moments(r, w, folds, r_shift, w_shift)
    total = moments[0]
    for extra in moments[1:]:
        total = total + extra
    alphas = np.logspace(-3, 3, 9) * 60
    floor = _noise_floor(total, r_shift, r.dtype)
    primal = np.stack([primal_held_out_mse(total - held, held, alphas, 7, floor) for held in moments])
    dual = dual_held_out_mse(r - r_shift, w - w_shift, folds, alphas, floor)
    np.testing.assert_allclose(dual, primal, rtol=1e-6)
    fit = fit_linear_link(r, w, alphas=alphas)  # takes the kernel form here
    assert fit.alpha == alphas[int(np.argmin(primal.mean(0)))]
