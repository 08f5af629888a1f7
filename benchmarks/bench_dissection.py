"""Network Dissection on the toy world: linkviz's ``dissect`` vs. a transcription of NetDissect-Lite's pipeline.

The baseline follows NetDissect-Lite's ``feature_operation.py`` step by step (written from its structure, not
copied): the features of every probe image are extracted first; the threshold of each unit is its quantile over
all of them (``np.percentile`` over images and positions, Lite's ``quantile_threshold``, read at the level
``dissect(mode="lite")`` uses; Lite's later streaming sketch is an approximation of the same number and slower
in Python); then ``tally_job``: image by image, the label histogram, and for every unit whose raw maximum exceeds
its threshold, the bilinear resize of its map to the segmentation resolution (``imresize(mode="F")`` =
``F.interpolate(bilinear, align_corners=False)``), ``argwhere`` of the pixels above the threshold, a ``bincount``
of the labels under them, the category presence through the label-category matrix and the whole-image labels;
IoU and labels as in Lite's ``tally``. The benchmark checks that it gives the same unit labels and IoUs as
``dissect(mode="lite")`` on the same model and probe.

Reported per size (probe images), every path interleaved (rotating order, ``--repeats`` rounds, medians), with no
memory tracing in the timed runs (peak memory: each run's resident-set high-water mark above its start, read from
``/proc``; tracing would slow the Python loop 3x and not the vectorised tally):

- end to end at each of ``--threads`` (torch threads, set per call): the forward-pass floor (``layer_activations``
  over the probe: the network's cost, which both pipelines pay), ``dissect`` (``threads=``), and the baseline;
- tally + quantile alone (1 thread, on precomputed activations): ``TopQuantile`` + ``Tally`` vs. Lite's
  percentile + ``tally_job``. Goal: >= 10x.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from measure import timed_with_peak

from linkviz.dissection import Tally, TopQuantile, dissect
from linkviz.dissection.quantile import lite_level
from linkviz.engines import torch_threads
from linkviz.models.activations import layer_activations
from linkviz.worlds.toy import load_toy_world

QUANTILE = 0.005


def lite_threshold(features: np.ndarray, level: float) -> np.ndarray:
    """Lite's ``quantile_threshold``: a percentile of every unit over images and positions, shape (C,)."""
    return np.percentile(features, 100 * level, axis=(0, 2, 3))


def lite_tally(features: np.ndarray, threshold: np.ndarray, pixels: np.ndarray, scalars: np.ndarray,
               labelcat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lite's ``tally_job``: image by image, unit by unit.

    Parameters
    ----------
    features : ndarray of float32, shape (N, C, h, w)
    threshold : ndarray, shape (C,)
    pixels : ndarray of int, shape (N, layers, sh, sw)
    scalars : ndarray of int, shape (N, k)
        Whole-image labels (0 = none).
    labelcat : ndarray of float, shape (L, K)
        One-hot primary category of each label (zero rows for skipped labels).

    Returns
    -------
    tally_both (C, L), tally_units_cat (C, K), tally_labels (L,)
    """
    n_units, (n_labels, n_categories) = features.shape[1], labelcat.shape
    sh, sw = pixels.shape[2:]
    tally_both = np.zeros((n_units, n_labels))
    tally_units_cat = np.zeros((n_units, n_categories))
    tally_labels = np.zeros(n_labels)
    for image in range(len(features)):
        image_scalars = [int(s) for s in scalars[image] if s]
        for scalar in image_scalars:
            tally_labels[scalar] += sh * sw
        image_pixels = pixels[image]
        tally_label = np.bincount(image_pixels.ravel())
        tally_label[0] = 0
        tally_labels[:len(tally_label)] += tally_label
        for unit in range(n_units):
            feature_map = features[image, unit]
            if feature_map.max() > threshold[unit]:
                mask = F.interpolate(torch.from_numpy(feature_map)[None, None], size=(sh, sw), mode="bilinear",
                                     align_corners=False)[0, 0].numpy()
                indexes = np.argwhere(mask > threshold[unit])
                tally_bt = np.bincount(image_pixels[:, indexes[:, 0], indexes[:, 1]].ravel())
                if len(tally_bt):
                    tally_bt[0] = 0
                tally_cat = tally_bt[None, :] @ labelcat[:len(tally_bt)]
                tally_cat = tally_cat[0]
                tally_both[unit, :len(tally_bt)] += tally_bt
                for scalar in image_scalars:
                    tally_cat = tally_cat + labelcat[scalar]
                    tally_both[unit, scalar] += len(indexes)
                tally_units_cat[unit] += len(indexes) * (tally_cat > 0)
    return tally_both, tally_units_cat, tally_labels


def lite_labels(tally_both: np.ndarray, tally_units_cat: np.ndarray, tally_labels: np.ndarray,
                labelcat: np.ndarray, label_category: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lite's ``tally``: IoU (C, L), then per category the best label, then the best category (last on ties)."""
    iou = tally_both / (tally_units_cat @ labelcat.T + tally_labels[None, :] - tally_both + 1e-10)
    n_categories = labelcat.shape[1]
    per_category = np.array([iou * (label_category == k)[None, :] for k in range(n_categories)])
    label = per_category.argmax(axis=2)
    score = np.take_along_axis(per_category, label[:, :, None], axis=2)[:, :, 0]
    best_category = score.argsort(axis=0)[::-1][0]
    units = np.arange(iou.shape[0])
    return label[best_category, units], score[best_category, units], iou


def lite_pipeline(features_of: Callable[[], torch.Tensor], level: float, pixels, scalars, labelcat,
                  label_category) -> tuple[np.ndarray, np.ndarray]:
    features = features_of().numpy()
    threshold = lite_threshold(features, level)
    counts = lite_tally(features, threshold, pixels, scalars, labelcat)
    labels, scores, _ = lite_labels(*counts, labelcat, label_category)
    return labels, scores


def linkviz_tally(activations: torch.Tensor, level: float, pixels, scalars, label_category, n_categories: int,
                  batch_size: int):
    quantile = TopQuantile(activations.shape[0] * activations.shape[2] * activations.shape[3], level=level)
    for start in range(0, len(activations), batch_size):
        quantile.update(activations[start:start + batch_size])
    tally = Tally(quantile.result(), label_category, n_categories=n_categories,
                  segmentation_shape=pixels.shape[2:], mode="lite")
    for start in range(0, len(activations), batch_size):
        stop = start + batch_size
        tally.update(activations[start:stop], pixel_labels=pixels[start:stop], image_labels=scalars[start:stop])
    return tally.counts()


def interleaved(paths: dict[str, Callable[[], object]], repeats: int, offset: int):
    """Median seconds, max peak MiB and last result of each path, run in a rotating order."""
    names, seconds, peaks, results = list(paths), {}, {}, {}
    for round_ in range(repeats):
        shift = (offset + round_) % len(names)
        for name in (*names[shift:], *names[:shift]):
            elapsed, peak, results[name] = timed_with_peak(paths[name])
            seconds.setdefault(name, []).append(elapsed)
            peaks.setdefault(name, []).append(np.nan if peak is None else peak)
    return ({name: float(np.median(v)) for name, v in seconds.items()},
            {name: float(np.max(v)) for name, v in peaks.items()}, results)


def measure_size(world, probe, level: float, args: argparse.Namespace, size_index: int) -> tuple[list, tuple]:
    """End-to-end rows (one per thread count) and the tally + quantile row of one probe."""
    model, layer = world.classifier, world.dissection_layer
    label_category = probe.primary_categories()
    labelcat = np.zeros((probe.n_labels, len(probe.categories)))
    labelcat[label_category >= 0, label_category[label_category >= 0]] = 1
    pixels, scalars = probe.label_batch(np.arange(len(probe)))
    scalars = np.zeros((len(probe), 0), np.int64) if scalars is None else scalars

    def features() -> torch.Tensor:
        return layer_activations(model, layer, probe.images, batch_size=args.batch_size)

    rows = []
    for threads in args.threads:
        def ours(threads=threads):
            return dissect(model, layer, probe, mode="lite", batch_size=args.batch_size, progress=False,
                           threads=threads)

        def floor(threads=threads):
            with torch_threads(threads):
                return features()

        def baseline(threads=threads):
            with torch_threads(threads):
                return lite_pipeline(features, level, pixels, scalars, labelcat, label_category)

        seconds, peaks, results = interleaved({"floor": floor, "linkviz": ours, "NDL": baseline}, args.repeats,
                                              size_index)
        result, (ndl_labels, ndl_scores) = results["linkviz"], results["NDL"]
        agree = float(np.mean(result.unit_labels == ndl_labels))
        iou_gap = float(np.abs(result.unit_iou - ndl_scores).max())
        rows.append((len(probe), threads, seconds, peaks, agree, iou_gap))
    activations = features()
    with torch_threads(1):
        paths = {"linkviz": lambda: linkviz_tally(activations, level, pixels, scalars, label_category,
                                                  len(probe.categories), args.batch_size),
                 "NDL": lambda: lite_tally(activations.numpy(), lite_threshold(activations.numpy(), level),
                                           pixels, scalars, labelcat)}
        seconds, peaks, _ = interleaved(paths, args.repeats, size_index)
    return rows, (len(probe), tuple(activations.shape[1:]), pixels.shape[1:], seconds, peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples-per-class", type=int, nargs="+", default=[8, 16, 32],
                        help="probe sizes (5 classes each)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads, end to end")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    world = load_toy_world(device="cpu")
    layer, level = world.dissection_layer, lite_level(QUANTILE)
    print(f"dissection of the toy classifier's {layer}, mode lite (level {level:.6f}), batch {args.batch_size}, "
          f"{args.repeats} interleaved rounds, load average {os.getloadavg()[0]:.1f} at the start")
    end_to_end, alone = [], []
    for size_index, samples in enumerate(args.samples_per_class):
        rows, row = measure_size(world, world.dissection_probe(samples, seed=args.seed), level, args, size_index)
        end_to_end += rows
        alone.append(row)
    print("\nend to end (images/s; ratios to the forward-pass floor, 1.0 = nothing but the network; peak RSS MiB)")
    print(f"{'images':>6} | thr | {'floor':>7} | {'linkviz':>7} | {'NDL':>7} | linkviz/floor | NDL/floor | "
          "linkviz vs NDL | labels agree | max IoU gap | peak MiB floor / linkviz / NDL")
    for n, threads, s, p, agree, gap in end_to_end:
        print(f"{n:6d} | {threads:3d} | {n / s['floor']:7.1f} | {n / s['linkviz']:7.1f} | {n / s['NDL']:7.1f} | "
              f"{s['linkviz'] / s['floor']:12.2f}x | {s['NDL'] / s['floor']:8.2f}x | {s['NDL'] / s['linkviz']:13.1f}x | "
              f"{agree:11.1%} | {gap:11.1e} | {p['floor']:.0f} / {p['linkviz']:.0f} / {p['NDL']:.0f}")
    print("\ntally + quantile alone, 1 thread (images/s; goal >= 10x)")
    print(f"{'images':>6} | units x map | labels x seg | {'linkviz':>8} | {'NDL':>7} | speed-up | peak MiB linkviz / NDL")
    for n, shape, seg, s, p in alone:
        print(f"{n:6d} | {shape!s:>11} | {seg!s:>12} | {n / s['linkviz']:8.1f} | {n / s['NDL']:7.1f} | "
              f"{s['NDL'] / s['linkviz']:7.1f}x | {p['linkviz']:.0f} / {p['NDL']:.0f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
