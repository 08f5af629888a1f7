"""The toy world's few-shot part segmenter, per class: mIoU on held-out generated images, and why flowers lag.

Trains :func:`linkviz.worlds.toy.part_segmenter.toy_part_segmenter` (10 labelled generated images per class,
renderer masks as labels) and scores it on ``--test`` independent held-out generated images per class against
the renderer's masks of their factor records (ground truth), per class (:func:`linkviz.segmentation.class_part_iou`):

- ``ws only``: what ``segment(ws)`` does, classes from the w -> class probe (the UnitTuner / dashboard path);
- ``known class``: restricted to the parts of the class the sample was generated with;
- ``free``: the same head without any restriction (what the old overlays did);
- ``voted``: restricted to the class the segmenter's own probabilities favour (:func:`vote_classes`).

Then, to say how far a segmenter of *generated* images can match *rendered* masks at all:

- ``generator vs render``: each generated pixel labelled by the part of the nearest colour in the sample's own
  render (the same procedure on the render itself is the procedure's ceiling); low values mean the generator does
  not draw that part where the renderer does;
- ``--ceiling``: the same head fitted on the held-out images themselves (its best case with unlimited labels);
- ``--reference``: the old notebook setting, the reference FewShotCNN-S head on every second layer at 32 x 32.

Smoke run: ``python benchmarks/toy_part_segmenter.py --test 4 --probe 20 --epochs 2``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from linkviz.segmentation import (
    class_label_mask,
    class_part_iou,
    generator_features,
    part_log_probs,
    train_few_shot,
    vote_classes,
)
from linkviz.worlds.toy import CLASS_NAMES, PART_NAMES, load_toy_world
from linkviz.worlds.toy.part_segmenter import generated_parts, toy_class_labels, toy_part_segmenter


def per_class(table: pd.DataFrame) -> pd.Series:
    return table.groupby("class", sort=False).miou.first()


def print_row(name: str, table: pd.DataFrame) -> None:
    values = per_class(table)
    print(f"  {name:22s} " + "  ".join(f"{c} {v:.3f}" for c, v in values.items()) + f"   (min {values.min():.3f})")


def colour_nearest(images: np.ndarray, renders: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Label every pixel of ``images [N, R, R, 3]`` by the part of the nearest colour in its own render."""
    labels = np.empty(masks.shape, np.int64)
    for i in range(len(images)):
        colours, first = np.unique(renders[i].reshape(-1, 3), axis=0, return_index=True)
        distance = torch.cdist(torch.from_numpy(images[i].reshape(-1, 3)).float(), torch.from_numpy(colours).float())
        labels[i] = masks[i].reshape(-1)[first][distance.argmin(1).numpy()].reshape(masks.shape[1:])
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=10, help="labelled generated images per class")
    parser.add_argument("--test", type=int, default=100, help="independent held-out generated images per class")
    parser.add_argument("--probe", type=int, default=1000, help="generated samples per class for the class probe")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--ceiling", action="store_true", help="also fit the head on the held-out images")
    parser.add_argument("--reference", action="store_true", help="also train the old notebook's reference head")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    world = load_toy_world(device=args.device)
    start = time.perf_counter()
    segment, table = toy_part_segmenter(world, per_class=args.per_class, probe_per_class=args.probe,
                                        epochs=args.epochs, seed=args.seed, device=args.device)
    print(f"trained on {args.per_class} labelled images per class: {table.attrs['train_seconds']:.1f} s for features, "
          f"head and probe ({time.perf_counter() - start:.1f} s with sampling and the built-in 40-per-class table); "
          f"probe right for {table.attrs['probe_accuracy']:.1%} of its held-out samples")
    print_row("built-in table", table)

    held = generated_parts(world, per_class=args.test, seed=10_000 + args.seed)
    labels = list(toy_class_labels().values())
    log_probs, chunk = [], 50
    for first in range(0, len(held.ws), chunk):
        features = generator_features(world.generator, held.ws[first:first + chunk], layers=segment.layers)
        log_probs.append(part_log_probs(segment.segmenter, features.to(args.device)).cpu())
    log_probs = torch.cat(log_probs)
    votes = vote_classes(log_probs, labels)
    variants = {
        "ws only (probe)": class_label_mask(segment.classes_of(held.ws), labels, n_labels=len(PART_NAMES)),
        "known class": class_label_mask(held.classes, labels, n_labels=len(PART_NAMES)),
        "free": None,
        "voted": class_label_mask(votes, labels, n_labels=len(PART_NAMES)),
    }
    print(f"\nmIoU per class on {args.test} independent held-out generated images per class "
          f"(vote right for {(votes == held.classes).float().mean():.1%}):")
    tables = {}
    for name, allowed in variants.items():
        scores = log_probs if allowed is None else log_probs.masked_fill(~allowed[:, :, None, None], float("-inf"))
        tables[name] = class_part_iou(scores.argmax(1), held.masks, held.classes, class_labels=toy_class_labels(),
                                      label_names=PART_NAMES)
        print_row(name, tables[name])
    print("\nper-part IoU (ws only):")
    for name, rows in tables["ws only (probe)"].groupby("class", sort=False):
        print(f"  {name:9s} " + ", ".join(f"{row.part} {row.iou:.3f}" for row in rows.itertuples()))

    with torch.no_grad():
        images = world.generator.synthesis(held.ws)
    images = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    renders, masks = world.true_images(held.z, held.c), held.masks.numpy()
    print("\ngenerator vs render agreement (colour-nearest labelling, mIoU per class; per part for the generator):")
    for name, source in (("render itself", renders), ("generated image", images)):
        agreement = class_part_iou(colour_nearest(source, renders, masks), masks, held.classes,
                                   class_labels=toy_class_labels(), label_names=PART_NAMES)
        print_row(name, agreement)
    for name, rows in agreement.groupby("class", sort=False):
        print(f"  {name:9s} " + ", ".join(f"{row.part} {row.iou:.3f}" for row in rows.itertuples()))

    if args.ceiling:
        fit = generated_parts(world, per_class=min(args.test, 40), seed=10_000 + args.seed)
        features = generator_features(world.generator, fit.ws, layers=segment.layers).to(args.device)
        start = time.perf_counter()
        head = train_few_shot(features, fit.masks, n_classes=len(PART_NAMES), epochs=args.epochs, batch_size=5,
                              schedule="cosine", channels=(64,), kernel_size=1, pixels_per_image=512, seed=args.seed,
                              device=args.device)
        allowed = class_label_mask(fit.classes, labels, n_labels=len(PART_NAMES))
        scores = part_log_probs(head, features).masked_fill(~allowed[:, :, None, None].to(features.device), -np.inf)
        print(f"\nceiling: the head fitted on {len(fit.ws) // len(CLASS_NAMES)} held-out images per class and scored "
              f"on them ({time.perf_counter() - start:.1f} s):")
        print_row("fit on the test images", class_part_iou(scores.argmax(1).cpu(), fit.masks, fit.classes,
                                                           class_labels=toy_class_labels(), label_names=PART_NAMES))

    if args.reference:
        labelled = generated_parts(world, per_class=args.per_class, seed=args.seed)
        features = generator_features(world.generator, labelled.ws, resolution=32).to(args.device)
        start = time.perf_counter()
        head = train_few_shot(features, labelled.masks[:, ::2, ::2], n_classes=len(PART_NAMES), epochs=30,
                              lr_step=20, seed=args.seed, device=args.device)
        seconds = time.perf_counter() - start
        predicted = []
        for first in range(0, len(held.ws), chunk):
            features = generator_features(world.generator, held.ws[first:first + chunk], resolution=32)
            logits = part_log_probs(head, features.to(args.device)).cpu()
            predicted.append(F.interpolate(logits, size=masks.shape[1:], mode="bilinear").argmax(1))
        print(f"\nreference FewShotCNN-S head, every second layer at 32 x 32, 30 epochs ({seconds:.1f} s), free:")
        print_row("reference head", class_part_iou(torch.cat(predicted), held.masks, held.classes,
                                                   class_labels=toy_class_labels(), label_names=PART_NAMES))


if __name__ == "__main__":
    main()
