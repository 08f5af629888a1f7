"""Network Dissection tally throughput: vectorised ``Tally`` vs. a per-unit, per-image loop (target >= 10x).

The loop does what the NetDissect reference does for every image: for every unit whose raw maximum exceeds its
threshold (Lite's shortcut), upsample that unit's map, threshold it, and bincount the labels under the mask in
every label layer. Both run on the same random activations and label maps, and the benchmark checks that they
produce identical counts (rarely, a pixel whose upsampled value lies within one float32 ulp of its threshold is
counted differently: the tally uses torch's channels-last bilinear kernel, the loop the default one, and the two
round differently in the last bit). It also reports peak memory: Python/numpy allocations (tracemalloc), the
resident set sampled every millisecond during the first vectorised run (torch's CPU tensors, which tracemalloc
does not see), the process's peak resident set, and CUDA's peak allocation when run on a GPU.

Sizes: ``--size smoke`` (default, seconds), ``--size medium`` (64 images of a ResNet-18 layer4-like layer: 512
units 7x7, Broden's 112x112 segmentation), ``--size large`` (2000 such images; the loop takes minutes). Single
flags (``--images`` ...) override the preset. Times are reported as wall clock and as this process's CPU time;
on a machine shared with other jobs the CPU-time ratio is the stable one.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
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


def timed(run) -> tuple[float, float, float, object]:
    """Wall seconds, CPU seconds and tracemalloc peak (MiB) of ``run()``, and its result."""
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return wall, cpu, peak / 2**20, result


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def sampled_peak_rss(run, interval: float = 0.001) -> float | None:
    """Peak resident set above the starting one (MiB) while ``run()`` runs, sampled every ``interval`` seconds
    (Linux only; ``None`` elsewhere)."""
    try:
        start = _rss_bytes()
    except OSError:
        return None
    peak, done = [start], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    return (max(peak[0], _rss_bytes()) - start) / 2**20


SIZES = {
    "smoke": {"images": 24, "units": 128, "seg": 56},
    "medium": {"images": 64, "units": 512, "seg": 112},
    "large": {"images": 2000, "units": 512, "seg": 112},
}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="smoke", help="preset of images, units and seg")
    parser.add_argument("--images", type=int)
    parser.add_argument("--units", type=int)
    parser.add_argument("--map", type=int, default=7, help="activation map side")
    parser.add_argument("--seg", type=int, help="segmentation side")
    parser.add_argument("--layers", type=int, default=3, help="label maps per image")
    parser.add_argument("--labels", type=int, default=60)
    parser.add_argument("--categories", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (both tallies)")
    parser.add_argument("--repeats", type=int, default=5, help="median of this many vectorised runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, value in SIZES[args.size].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    activations, pixel, image, label_category = synthetic_data(args)
    quantile = TopQuantile(args.images * args.map**2, level=0.995)
    quantile.update(activations)
    thresholds = quantile.result()
    print(f"data ({args.size}): {args.images} images, {args.units} units {args.map}x{args.map} -> {args.seg}x"
          f"{args.seg}, {args.layers} label layers, {args.labels} labels; device {args.device}, {args.threads} "
          "thread(s)")
    print(f"quantile buffer: {quantile.k} values per unit ({quantile.k * args.units * 4 / 2**20:.2f} MiB) instead "
          f"of {args.images * args.map**2}")
    print(f"input data: activations {activations.numel() * 4 / 2**20:.1f} MiB, label maps "
          f"{pixel.nbytes / 2**20:.1f} MiB (held by both tallies, not counted below)")

    def vectorised():
        tally = Tally(thresholds, label_category, n_categories=args.categories,
                      segmentation_shape=(args.seg, args.seg), device=args.device)
        for start in range(0, args.images, args.batch_size):
            stop = start + args.batch_size
            tally.update(activations[start:stop], pixel_labels=pixel[start:stop], image_labels=image[start:stop])
        return tally.counts()

    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_mib = sampled_peak_rss(vectorised)  # the first run (warm-up): later runs reuse memory the allocator kept
    timings = [timed(vectorised) for _ in range(args.repeats)]
    ours_wall, ours_cpu = (float(np.median([t[i] for t in timings])) for i in (0, 1))
    ours_mib, counts = max(t[2] for t in timings), timings[0][3]
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        print(f"CUDA peak allocation (vectorised tally): {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")
    loop_wall, loop_cpu, loop_mib, (intersection, activation, truth) = timed(
        lambda: loop_tally(activations, thresholds, pixel, image, label_category, args.categories))
    pairs = ((counts.intersection, intersection), (counts.activation, activation), (counts.truth, truth))
    differing = sum(int(np.count_nonzero(ours != loop)) for ours, loop in pairs)
    largest = max(float(np.abs(ours - loop).max()) for ours, loop in pairs)
    same = "True" if not differing else f"False, {differing} counts differ (max |difference| {largest:g} pixels)"
    rss = "n/a" if rss_mib is None else f"{rss_mib:.1f} MiB"
    print(f"vectorised tally: {args.images / ours_wall:9.1f} images/s wall, {args.images / ours_cpu:9.1f} images/s "
          f"CPU  (medians of {args.repeats}: {ours_wall:.3f} s wall, {ours_cpu:.3f} s CPU)")
    print(f"per-unit loop   : {args.images / loop_wall:9.1f} images/s wall, {args.images / loop_cpu:9.1f} images/s "
          f"CPU  ({loop_wall:.3f} s wall, {loop_cpu:.3f} s CPU)")
    print(f"speed-up: {loop_wall / ours_wall:.1f}x wall, {loop_cpu / ours_cpu:.1f}x CPU (target >= 10x); identical "
          f"counts: {same}")
    print(f"peak memory, vectorised tally: {ours_mib:.1f} MiB Python/numpy (tracemalloc), {rss} resident set above "
          f"the start (sampled during the first run, includes torch tensors); per-unit loop: {loop_mib:.1f} MiB "
          "tracemalloc")
    print(f"process peak resident set: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
