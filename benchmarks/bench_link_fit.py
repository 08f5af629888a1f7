"""Ridge link fit with k-fold CV (linkviz) vs. sklearn's RidgeCV, on planted data of the reference's size.

Default size: 25 000 pairs x 2048 units -> 512 latent dims (5 dog classes x 5000 pairs, ResNet-50 avgpool).
Both fits search the same penalties; sklearn uses its fastest mode (efficient leave-one-out, ``cv=None``) unless
``--sklearn-kfold`` asks for the same k-fold CV as linkviz.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from linkviz.linking import fit_linear_link


def planted_pairs(n: int, d: int, w_dim: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative, correlated r (like post-ReLU pooled features) and w = A r + b + noise, float32."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)).astype(np.float32) / np.sqrt(d)
    r = np.maximum(rng.standard_normal((n, d), dtype=np.float32) @ mixing + 0.3, 0)
    weight = rng.normal(size=(w_dim, d)).astype(np.float32) / np.sqrt(d)
    w = r @ weight.T + 0.1 + rng.standard_normal((n, w_dim), dtype=np.float32)
    return r, w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=25_000, help="pairs")
    parser.add_argument("--d", type=int, default=2048, help="units of r")
    parser.add_argument("--w-dim", type=int, default=512)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sklearn-kfold", action="store_true", help="give RidgeCV the same k-fold CV (slow)")
    args = parser.parse_args()
    r, w = planted_pairs(args.n, args.d, args.w_dim, seed=args.seed)

    start = time.perf_counter()
    fit = fit_linear_link(r, w, method="ridge", cv=args.cv, seed=args.seed)
    ours = time.perf_counter() - start
    alphas = list(fit.cv_scores)
    print(f"linkviz fit_linear_link: {ours:.2f} s, {args.cv}-fold CV over {len(alphas)} alphas, "
          f"alpha={fit.alpha:.4g}, train MSE {fit.train_mse:.4g}")

    cv = KFold(args.cv, shuffle=True, random_state=args.seed) if args.sklearn_kfold else None
    start = time.perf_counter()
    reference = RidgeCV(alphas=alphas, cv=cv).fit(r, w)
    theirs = time.perf_counter() - start
    mode = f"{args.cv}-fold" if args.sklearn_kfold else "leave-one-out"
    print(f"sklearn RidgeCV ({mode}): {theirs:.2f} s, alpha={reference.alpha_:.4g}")

    same_alpha = fit_linear_link(r, w, method="ridge", alphas=[reference.alpha_], cv=args.cv).link
    difference = np.abs(same_alpha.weight - reference.coef_).max() / np.abs(reference.coef_).max()
    print(f"max |coef difference| at sklearn's alpha, relative to max |coef|: {difference:.2e}")
    print(f"link fit {args.n}x{args.d}->{args.w_dim}: linkviz {ours:.2f} s, sklearn RidgeCV ({mode}) "
          f"{theirs:.2f} s, speed-up {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
