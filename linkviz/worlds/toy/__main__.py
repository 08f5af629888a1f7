"""Command line for the toy world: ``python -m linkviz.worlds.toy train classifier|generator``.

Only parses arguments and calls library functions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from .dataset import RENDERER_VERSION, render_set
from .training import Stopwatch, save_weights, train_classifier, train_generator
from .world import DEFAULT_WEIGHTS, load_classifier_module


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m linkviz.worlds.toy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the toy classifier or generator")
    train.add_argument("model", choices=["classifier", "generator"])
    train.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS,
                       help="folder of the weights (default: the package's committed weights)")
    train.add_argument("--data-dir", type=Path, default=Path(".linkviz-data"), help="render cache folder")
    train.add_argument("--samples-per-class", type=int, default=5000)
    train.add_argument("--epochs", type=int, default=2, help="classifier epochs")
    train.add_argument("--steps", type=int, default=3000, help="generator steps")
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--learning-rate", type=float, default=None,
                       help="peak learning rate (default: 3e-3 classifier, 2e-3 generator; lower it with --continue)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.add_argument("--continue", dest="continue_training", action="store_true",
                       help="generator: start from the weights in --weights-dir instead of from scratch (weights of an "
                            "earlier, narrower architecture are grown; their new inputs start at zero)")
    train.add_argument("--adversarial-weight", type=float, default=0.0,
                       help="generator: weight of a patch discriminator's hinge loss (sharpens edges; use it to "
                            "fine-tune with --continue; default 0, no discriminator)")
    card = commands.add_parser("card", help="evaluate the toy world and regenerate its model card")
    card.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS)
    card.add_argument("--data-dir", type=Path, default=Path(".linkviz-data"))
    card.add_argument("--samples", type=int, default=3000, help="generated samples for agreement and FD")
    card.add_argument("--seed", type=int, default=1)
    card.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if args.command == "card":
        from .model_card import write_model_card

        path = write_model_card(args.weights_dir, data_dir=args.data_dir, n_samples=args.samples, seed=args.seed,
                                device=args.device)
        print(f"wrote {path}")
        return
    train_set = render_set(args.samples_per_class, seed=args.seed, cache_dir=args.data_dir)
    clock = Stopwatch()
    settings = {"seed": args.seed, "samples_per_class": args.samples_per_class, "device": str(args.device)}
    if args.model == "classifier":
        model = train_classifier(train_set, epochs=args.epochs, batch_size=args.batch_size or 64, seed=args.seed,
                                 device=args.device, learning_rate=args.learning_rate or 3e-3)
        save_weights(model, args.weights_dir / "classifier.safetensors",
                     metadata={**settings, "epochs": args.epochs, "train_seconds": clock.seconds})
    else:
        classifier = load_classifier_module(args.weights_dir, device=args.device)
        path = args.weights_dir / "generator.safetensors"
        initial = load_file(str(path)) if args.continue_training else None
        earlier = json.loads(path.with_suffix(".json").read_text()) if initial is not None else {}
        previous_steps, previous_seconds = earlier.get("steps", 0), earlier.get("train_seconds", 0.0)
        learning_rate = args.learning_rate or 2e-3

        def metadata(steps: int) -> dict:
            run = {"steps": steps, "learning_rate": learning_rate, "train_seconds": clock.seconds,
                   "adversarial_weight": args.adversarial_weight,
                   "continued": initial is not None, "renderer_version": RENDERER_VERSION}
            return {**settings, "steps": previous_steps + steps, "train_seconds": previous_seconds + clock.seconds,
                    "runs": earlier.get("runs", []) + [run]}

        def checkpoint(generator, step):
            save_weights(generator, path.with_name("generator_checkpoint.safetensors"), metadata=metadata(step))

        model = train_generator(train_set, classifier, steps=args.steps, batch_size=args.batch_size or 32,
                                learning_rate=learning_rate, seed=args.seed, device=args.device,
                                checkpoint=checkpoint, initial_state=initial,
                                adversarial_weight=args.adversarial_weight)
        save_weights(model, path, metadata=metadata(args.steps))
    print(f"trained {args.model} in {clock.seconds:.0f} s")


if __name__ == "__main__":
    main()
