"""The main job on the embedded default world: what ``python -m linkviz demo`` runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .pairs import PairSet, sample_pairs
from .toyworld.evaluation import sample_grid
from .toyworld.factors import CLASS_NAMES
from .toyworld.model_card import evaluate_world
from .toyworld.world import DEFAULT_WEIGHTS, load_toy_world


@dataclass
class DemoReport:
    """What the demo computed and where it wrote it."""

    out_dir: Path
    pairs: PairSet
    metrics: dict
    files: list[Path] = field(default_factory=list)


def _save_png(image: np.ndarray, path: Path, *, zoom: int = 2) -> Path:
    from PIL import Image

    Image.fromarray(np.kron(image, np.ones((zoom, zoom, 1), np.uint8))).save(path)
    return path


def run_demo(out_dir: str | Path, *, samples_per_class: int = 200, evaluation_samples: int = 1000, seed: int = 0,
             device: str | torch.device = "cpu", cache_dir: str | Path | None = None,
             weights_dir: str | Path = DEFAULT_WEIGHTS, progress: bool = True) -> DemoReport:
    """Load the toy world, sample linked (w, r) pairs and write a sample grid and the model-card numbers.

    Parameters
    ----------
    out_dir : path
        Output folder (created).
    samples_per_class : int
        Linked pairs sampled per class (psi 0.7).
    evaluation_samples : int
        Generated and rendered images for the model-card numbers.
    seed : int
        Seed of the pair sampling and of the evaluation.
    device : str or torch.device
        Where the models run.
    cache_dir : path, optional
        Cache for pairs and renders (default: ``<out_dir>/cache``).

    Returns
    -------
    DemoReport
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    world = load_toy_world(weights_dir, device=device)
    pairs = sample_pairs(world.generator, world.classifier, classes=range(len(CLASS_NAMES)),
                         samples_per_class=samples_per_class, truncation_psi=0.7, seed=seed, device=device,
                         cache_dir=cache_dir, progress=progress)
    files = [out_dir / "pairs.npz", out_dir / "pairs.csv"]
    np.savez(files[0], w=pairs.w, r=pairs.r, labels=pairs.labels, predicted=pairs.predicted,
             accepted=pairs.accepted, seeds=pairs.seeds)
    pairs.to_frame().to_csv(files[1], index=False)
    files.append(_save_png(sample_grid(world.generator, per_class=8, truncation_psi=0.7, seed=seed),
                           out_dir / "samples.png"))
    metrics = evaluate_world(Path(weights_dir), data_dir=cache_dir, n_samples=evaluation_samples, seed=seed,
                             device=device)
    metrics["pairs"] = {"n": len(pairs), "acceptance_rate": pairs.acceptance_rate,
                        "acceptance_by_class": {CLASS_NAMES[c]: rate for c, rate in pairs.acceptance_by_class().items()}}
    files.append(out_dir / "model_card_numbers.json")
    files[-1].write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return DemoReport(out_dir=out_dir, pairs=pairs, metrics=metrics, files=files)
