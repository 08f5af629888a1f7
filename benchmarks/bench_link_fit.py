"""Ridge link fit with k-fold CV (linkviz) vs. sklearn's ``RidgeCV``, on planted data, over 3 sizes (``--sizes``).

Three paths fit the same data with the same candidate penalties (linkviz's default grid):

- ``linkviz``: :func:`linkviz.linking.fit_linear_link`, 5-fold CV (one eigendecomposition per fold for all alphas);
- ``sklearn same folds``: ``RidgeCV(alphas, cv=<linkviz's folds>, scoring="neg_mean_squared_error")``, the same
  k-fold CV (a ``Ridge`` fit per fold and alpha); the benchmark checks it selects the same alpha and that the
  weights agree within tolerance;
- ``sklearn LOO``: ``RidgeCV(alphas)`` with ``cv=None``, sklearn's fastest mode (efficient leave-one-out from one
  eigendecomposition); a different CV, so its alpha may differ.

The paths are interleaved (every path at one size, in a rotating order, before the next size); peak memory is
each run's peak resident set above the one at its start (Linux's high-water mark, reset before the run: nothing
is traced, so timing is unaffected).
BLAS/LAPACK threads are set with ``threadpoolctl`` for every path alike (``--threads``, default 1: on a machine
shared with other jobs an oversubscribed LAPACK eigendecomposition is many times slower). The default run takes
well under a minute on 2 cores; ``--sizes 10000x1024x256`` is the issue's size (about 10 s for linkviz and
75 s for ``RidgeCV`` LOO on 1 thread under load), ``--sizes 25000x2048x512`` the reference's (minutes).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
from measure import timed_with_peak
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits

from linkviz.linking import fit_linear_link

PATHS = ("linkviz", "sklearn same folds", "sklearn LOO")


def planted_pairs(n: int, d: int, w_dim: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative, correlated r (like post-ReLU pooled features) and w = A r + b + noise, float32."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)).astype(np.float32) / np.sqrt(d)
    r = np.maximum(rng.standard_normal((n, d), dtype=np.float32) @ mixing + 0.3, 0)
    weight = rng.normal(size=(w_dim, d)).astype(np.float32) / np.sqrt(d)
    w = r @ weight.T + 0.1 + rng.standard_normal((n, w_dim), dtype=np.float32)
    return r, w


def linkviz_folds(n: int, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) indices of linkviz's folds for ``n`` distinct pairs (``array_split(permutation(n), cv)``)."""
    tests = np.array_split(np.random.default_rng(seed).permutation(n), cv)
    return [(np.setdiff1d(np.arange(n), test), np.sort(test)) for test in tests]


def make_paths(r: np.ndarray, w: np.ndarray, alphas: list[float], cv: int, seed: int) -> dict[str, Callable]:
    """Each path returns (alpha, weight (w_dim, D))."""
    folds = linkviz_folds(len(r), cv, seed)

    def ours():
        fit = fit_linear_link(r, w, method="ridge", alphas=alphas, cv=cv, seed=seed)
        return fit.alpha, fit.link.weight

    def same_folds():
        model = RidgeCV(alphas=alphas, cv=folds, scoring="neg_mean_squared_error").fit(r, w)
        return float(model.alpha_), model.coef_

    def leave_one_out():
        model = RidgeCV(alphas=alphas).fit(r, w)
        return float(model.alpha_), model.coef_

    return dict(zip(PATHS, (ours, same_folds, leave_one_out)))


def parse_size(text: str) -> tuple[int, int, int]:
    n, d, w_dim = (int(part) for part in text.lower().split("x"))
    return n, d, w_dim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=parse_size,
                        default=[(500, 64, 16), (1000, 128, 32), (2000, 256, 64)],
                        help="N x D x w_dim, e.g. 10000x1024x256")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/LAPACK threads of every path")
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds per size (medians)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"link fit, {args.cv}-fold CV, {args.threads} BLAS thread(s), load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    header = (f"{'N x D -> w_dim':>20} | {'linkviz s':>9} | {'same folds s':>12} | {'LOO s':>7} | "
              f"{'x same folds':>12} | {'x LOO':>6} | same alpha | rel. weight diff | peak RSS MiB ours / folds / LOO")
    print(header)
    print("-" * len(header))
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for size_index, (n, d, w_dim) in enumerate(args.sizes):
            r, w = planted_pairs(n, d, w_dim, seed=args.seed)
            scale = n * float(r.astype(np.float64).var(axis=0).mean())  # linkviz's default grid (its docstring)
            alphas = list(scale * np.logspace(-6, 2, 17))
            paths = make_paths(r, w, alphas, args.cv, args.seed)
            seconds: dict[str, list[float]] = {name: [] for name in PATHS}
            peaks: dict[str, list[float]] = {name: [] for name in PATHS}
            results = {}
            for round_ in range(args.repeats):
                shift = (size_index + round_) % len(PATHS)  # no path always first
                for name in (*PATHS[shift:], *PATHS[:shift]):
                    elapsed, peak, results[name] = timed_with_peak(paths[name])
                    seconds[name].append(elapsed)
                    peaks[name].append(float("nan") if peak is None else peak)
            median = {name: float(np.median(values)) for name, values in seconds.items()}
            (ours_alpha, ours_weight), (folds_alpha, folds_weight) = results["linkviz"], results["sklearn same folds"]
            difference = np.abs(ours_weight - folds_weight).max() / np.abs(folds_weight).max()
            memory = " / ".join(f"{max(peaks[name]):.0f}" for name in PATHS)
            print(f"{f'{n} x {d} -> {w_dim}':>20} | {median['linkviz']:9.2f} | {median['sklearn same folds']:12.2f} | "
                  f"{median['sklearn LOO']:7.2f} | {median['sklearn same folds'] / median['linkviz']:11.1f}x | "
                  f"{median['sklearn LOO'] / median['linkviz']:5.1f}x | {ours_alpha == folds_alpha!s:>10} | "
                  f"{difference:16.1e} | {memory}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}; LOO alphas may differ (another CV); 'same alpha' "
          "and the weight difference compare linkviz with sklearn on the same folds")


if __name__ == "__main__":
    main()
