"""Network Dissection tally throughput: vectorised ``Tally`` vs. a per-unit, per-image loop (target >= 10x).

The loop does what the NetDissect reference does for every image: for every unit whose raw maximum exceeds its
threshold (Lite's shortcut), upsample that unit's map, threshold it, and bincount the labels under the mask in
every label layer. Both run on the same random activations and label maps, and the benchmark checks that they
produce identical counts. It also reports peak memory: Python/numpy allocations (tracemalloc), the process's peak
resident set, and CUDA's peak allocation when run on a GPU.

Defaults are a smoke size; ``--images 2000 --units 512 --seg 112`` approaches a ResNet-18 layer4 on Broden.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
import torch
import torch.nn.functional as F

from linkviz.dissection import Tally, TopQuantile


def synthetic_data(args: argparse.Namespace) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Activations [N, C, h, w], pixel labels [N, layers, sh, sw], image labels [N, 1], label categories [L]."""
    rng = np.random.default_rng(args.seed)
    activations = torch.from_numpy(rng.gamma(1.5, size=(args.images, args.units, args.map, args.map))
                                   .astype(np.float32))
    pixel = rng.integers(0, args.labels, (args.images, args.layers, args.seg, args.seg))
    pixel[rng.random(pixel.shape) < 0.3] = 0
    image = rng.integers(1, args.labels, (args.images, 1))
    label_category = rng.integers(0, args.categories, args.labels)
    label_category[0] = -1
    return activations, pixel, image, label_category


def loop_tally(activations: torch.Tensor, thresholds: np.ndarray, pixel: np.ndarray, image: np.ndarray,
               label_category: np.ndarray, n_categories: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference-style paper-mode tally: one image and one unit at a time."""
    n, n_units = activations.shape[:2]
    n_labels, size = len(label_category), pixel.shape[2:]
    intersection = np.zeros((n_units, n_labels))
    activation = np.zeros((n_units, n_categories))
    truth = np.zeros(n_labels)
    for i in range(n):
        labels_here = np.unique(np.concatenate([pixel[i].ravel(), image[i]]))
        present = {int(label_category[v]) for v in labels_here if v and label_category[v] >= 0}
        for layer in pixel[i]:
            truth += np.bincount(layer.ravel(), minlength=n_labels)
        for label in image[i]:
            truth[label] += size[0] * size[1]
        for u in range(n_units):
            if float(activations[i, u].max()) <= thresholds[u]:
                continue
            up = F.interpolate(activations[i:i + 1, u:u + 1], size=size, mode="bilinear", align_corners=False)
            mask = (up[0, 0].double() > float(thresholds[u])).numpy()
            count = mask.sum()
            for layer in pixel[i]:
                intersection[u] += np.bincount(layer[mask], minlength=n_labels)
            for label in image[i]:
                intersection[u, label] += count
            for k in present:
                activation[u, k] += count
    truth[0] = 0
    intersection[:, label_category < 0] = 0
    return intersection, activation, truth


def peak_memory(run) -> tuple[float, float]:
    """Seconds and tracemalloc peak (MiB) of ``run()``."""
    tracemalloc.start()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--map", type=int, default=7, help="activation map side")
    parser.add_argument("--seg", type=int, default=56, help="segmentation side")
    parser.add_argument("--layers", type=int, default=3, help="label maps per image")
    parser.add_argument("--labels", type=int, default=60)
    parser.add_argument("--categories", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (both tallies)")
    parser.add_argument("--repeats", type=int, default=5, help="median of this many vectorised runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    activations, pixel, image, label_category = synthetic_data(args)
    quantile = TopQuantile(args.images * args.map**2, level=0.995)
    quantile.update(activations)
    thresholds = quantile.result()
    print(f"data: {args.images} images, {args.units} units {args.map}x{args.map} -> {args.seg}x{args.seg}, "
          f"{args.layers} label layers, {args.labels} labels; device {args.device}, {args.threads} thread(s)")
    print(f"quantile buffer: {quantile.k} values per unit ({quantile.k * args.units * 4 / 2**20:.2f} MiB) instead "
          f"of {args.images * args.map**2}")

    def vectorised():
        tally = Tally(thresholds, label_category, n_categories=args.categories,
                      segmentation_shape=(args.seg, args.seg), device=args.device)
        for start in range(0, args.images, args.batch_size):
            stop = start + args.batch_size
            tally.update(activations[start:stop], pixel_labels=pixel[start:stop], image_labels=image[start:stop])
        return tally.counts()

    vectorised()  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timings = [peak_memory(vectorised) for _ in range(args.repeats)]
    ours_s, ours_mib, counts = float(np.median([t[0] for t in timings])), timings[0][1], timings[0][2]
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        print(f"CUDA peak allocation (vectorised tally): {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")
    loop_s, loop_mib, (intersection, activation, truth) = peak_memory(
        lambda: loop_tally(activations, thresholds, pixel, image, label_category, args.categories))
    same = (np.array_equal(counts.intersection, intersection) and np.array_equal(counts.activation, activation)
            and np.array_equal(counts.truth, truth))
    print(f"vectorised tally: {args.images / ours_s:9.1f} images/s  ({ours_s:.3f} s median, tracemalloc peak "
          f"{ours_mib:.1f} MiB)")
    print(f"per-unit loop   : {args.images / loop_s:9.1f} images/s  ({loop_s:.3f} s, tracemalloc peak "
          f"{loop_mib:.1f} MiB)")
    print(f"speed-up: {loop_s / ours_s:.1f}x (target >= 10x); identical counts: {same}")
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          "(torch CPU tensors are not seen by tracemalloc)")


if __name__ == "__main__":
    main()
