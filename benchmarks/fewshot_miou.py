"""Few-shot part segmentation on the trained toy world: mIoU vs the number k of labelled generated images.

Every generated sample has a known ground truth: ``generator.factors(z, c)`` gives the factor record its mapping
used, and rendering that record gives the part masks the image should show. The few-shot segmenter is trained on
the renderer masks of k generated images and scored on held-out generated images against

- the renderer's masks of those samples (ground truth), and, with ``--reference-renders N > 0``,
- a supervised reference segmenter trained on N renders per class and applied to the generated images (the
  issue's protocol for worlds whose generated images have no ground truth).

The reference's own mIoU against the renderer masks, on renders and on generated images, is printed too: the
second number says how faithfully the generator draws the parts the renderer would.

The per-class table of the toy world's shipped segmenter (class-restricted per-pixel head, 10 labelled images
per class) and the generator-vs-render agreement are in ``benchmarks/toy_part_segmenter.py``.

Sizes default to the paper's protocol (k = 1..10, 100 epochs); that needs a GPU or patience. A smoke run:
``python benchmarks/fewshot_miou.py --pool 2 --test 4 --ks 1,2 --epochs 2 --reference-renders 0``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from linkviz.segmentation import (
    fewshot_curve,
    generator_features,
    mean_iou,
    segment_images,
    train_render_segmenter,
)
from linkviz.worlds.toy import CLASS_NAMES, PART_NAMES, render, render_set
from linkviz.worlds.toy.world import DEFAULT_WEIGHTS, load_generator


def generated_samples(generator, n: int, *, seed: int, device: str):
    """Class-balanced latents, their ws, uint8 images [n, R, R, 3] and renderer part masks [n, R, R]."""
    torch_rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.z_dim, generator=torch_rng).to(device)
    labels = torch.arange(n) % generator.c_dim
    c = F.one_hot(labels, generator.c_dim).float().to(device)
    with torch.no_grad():
        ws = generator.mapping(z, c)
        images = generator.synthesis(ws)
    images = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    masks = render(generator.factors(z, c), resolution=generator.img_resolution).part_masks
    return ws, images, masks


def summarise(table, *, target: str) -> None:
    """Print mean (and sd over repeats) mIoU per k."""
    per_fit = table.groupby(["k", "repeat"]).miou.first().groupby("k")
    for k, values in per_fit:
        spread = f" +- {values.std():.3f}" if len(values) > 1 else ""
        print(f"  k={k:2d}  mIoU vs {target}: {values.mean():.3f}{spread}")
    last = table[table.k == table.k.max()].groupby("label", sort=False).iou.mean().dropna()
    print(f"  per-part IoU at k={table.k.max()}: " + ", ".join(f"{name} {iou:.2f}" for name, iou in last.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--weights-file", default="generator.safetensors")
    parser.add_argument("--pool", type=int, default=10, help="labelled generated images available (max k)")
    parser.add_argument("--test", type=int, default=100, help="held-out generated images to score on")
    parser.add_argument("--ks", default="1,2,3,4,5,6,7,8,9,10")
    parser.add_argument("--repeats", type=int, default=3, help="draws of the labelled images per k")
    parser.add_argument("--epochs", type=int, default=100, help="few-shot training epochs")
    parser.add_argument("--layers", default="every_second", help="'every_second', 'all' or comma-separated names")
    parser.add_argument("--reference-renders", type=int, default=400, help="renders per class (0: no reference)")
    parser.add_argument("--reference-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    path = args.weights_dir / args.weights_file
    if not path.exists():
        print(f"skipped: no trained toy generator at {path} (train it with `python -m linkviz.worlds.toy train "
              f"generator`, or pass --weights-file)")
        return
    start = time.perf_counter()
    generator = load_generator(args.weights_dir, filename=args.weights_file, device=args.device)
    ks = [int(k) for k in args.ks.split(",")]
    layers = args.layers if args.layers in ("every_second", "all") else args.layers.split(",")
    ws, images, masks = generated_samples(generator, args.pool + args.test, seed=args.seed, device=args.device)
    features = generator_features(generator, ws, layers=layers).cpu()
    print(f"{len(ws)} generated samples ({', '.join(CLASS_NAMES)} in turn), features {list(features.shape[1:])} "
          f"from {layers} ({time.perf_counter() - start:.1f} s)")
    pool, test = slice(0, args.pool), slice(args.pool, None)
    targets = {"renderer masks": masks[test]}

    if args.reference_renders > 0:
        renders = render_set(args.reference_renders, seed=args.seed + 1, resolution=generator.img_resolution)
        held_out = render_set(max(args.reference_renders // 10, 2), seed=args.seed + 2,
                              resolution=generator.img_resolution)
        reference = train_render_segmenter(renders.images, renders.part_masks, n_classes=len(PART_NAMES),
                                           epochs=args.reference_epochs, seed=args.seed, device=args.device)
        on_renders, _ = mean_iou(segment_images(reference, held_out.images), held_out.part_masks,
                                 n_classes=len(PART_NAMES))
        reference_masks = segment_images(reference, images[test])
        on_generated, _ = mean_iou(reference_masks, masks[test], n_classes=len(PART_NAMES))
        print(f"reference segmenter ({len(renders)} renders): mIoU {on_renders:.3f} on held-out renders, "
              f"{on_generated:.3f} on generated images vs renderer masks")
        targets["reference segmenter"] = reference_masks

    for target, target_masks in targets.items():
        start = time.perf_counter()
        table = fewshot_curve(features[pool], masks[pool], features[test], target_masks,
                              n_classes=len(PART_NAMES), ks=ks, repeats=args.repeats, class_names=PART_NAMES,
                              epochs=args.epochs, seed=args.seed, device=args.device)
        print(f"few-shot segmenter vs {target} on {args.test} generated images "
              f"({time.perf_counter() - start:.1f} s):")
        summarise(table, target=target)


if __name__ == "__main__":
    main()
