"""Command line: ``python -m linkviz demo --out DIR``.  Parses arguments and calls library functions."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m linkviz", description="linkviz on the embedded toy world")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main job on the embedded toy world")
    demo.add_argument("--out", type=Path, required=True, help="output folder")
    demo.add_argument("--samples-per-class", type=int, default=200, help="linked pairs per class")
    demo.add_argument("--evaluation-samples", type=int, default=1000)
    demo.add_argument("--counterfactual-examples", type=int, default=8)
    demo.add_argument("--counterfactual-steps", type=int, default=300)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--cache-dir", type=Path, default=None, help="default: OUT/cache")
    demo.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    from .demo import app_command, run_demo

    report = run_demo(args.out, samples_per_class=args.samples_per_class,
                      evaluation_samples=args.evaluation_samples, seed=args.seed, device=args.device,
                      counterfactual_examples=args.counterfactual_examples,
                      counterfactual_steps=args.counterfactual_steps,
                      cache_dir=args.cache_dir)
    metrics = report.metrics
    print(f"pairs: {len(report.pairs)} sampled, acceptance {100 * report.pairs.acceptance_rate:.1f}%")
    print(f"classifier accuracy on renders: {100 * metrics['classifier_accuracy']['all']:.1f}%")
    print(f"generated agreement at psi 0.7: {100 * metrics['generated_agreement_psi_0.7']['all']:.1f}%")
    print(f"Frechet ratio (generated / rendered baseline): {metrics['frechet']['ratio']:.1f}x")
    link = metrics["link"]
    print("held-out link: " + ", ".join(f"{name} {value:.3f}" for name, value in link.items()))
    counterfactual = metrics["counterfactual"]
    print(f"counterfactuals {counterfactual['origin']} -> {counterfactual['target']}: success "
          f"{100 * counterfactual['success_rate']:.0f}% of {counterfactual['examples']}, median "
          f"{counterfactual['median_steps']} steps")
    for path in report.files:
        print(f"wrote {path}")
    figures = ", ".join(path.name for path in report.files if path.suffix == ".png")
    print(f"figures are in {report.out_dir}/ ({figures})")
    print(f"open the app: {app_command()}")


if __name__ == "__main__":
    main()
