"""Batched (w, r) pair sampling vs. the reference's one-image-per-pass loop, on the toy world."""

from __future__ import annotations

import argparse
import time

import torch

import linkviz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples-per-class", type=int, default=40)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    world = linkviz.load_toy_world(device=args.device)
    kwargs = dict(classes=range(5), samples_per_class=args.samples_per_class, seed=0, device=args.device,
                  progress=False)
    timings = {}
    for name, batch_size in (("batched (64)", 64), ("per image (1)", 1)):
        start = time.perf_counter()
        pairs = linkviz.sample_pairs(world.generator, world.classifier, batch_size=batch_size, **kwargs)
        timings[name] = time.perf_counter() - start
        print(f"{name:>14}: {timings[name]:.2f} s for {len(pairs)} pairs "
              f"({len(pairs) / timings[name]:.0f} pairs/s)")
    print(f"speed-up batched vs per image: {timings['per image (1)'] / timings['batched (64)']:.1f}x "
          f"(target >= 5x) on {args.device}")


if __name__ == "__main__":
    main()
