"""The main job on the embedded default world: what ``python -m linkviz demo`` runs."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .counterfactual import counterfactual_trajectory, find_counterfactuals, unit_frequency
from .images import save_png, tile_images
from .linking import build_linked_model, evaluate_link, space_similarity
from .linking.linked_model import LinkedModel
from .pairs import PairSet, sample_pairs
from .tuning import effect_sizes, run_sweep
from .worlds.toy.evaluation import sample_grid
from .worlds.toy.factors import CLASS_NAMES
from .worlds.toy.model_card import evaluate_world
from .worlds.toy.world import DEFAULT_WEIGHTS, load_toy_world


@dataclass
class DemoReport:
    """What the demo computed and where it wrote it."""

    out_dir: Path
    pairs: PairSet
    metrics: dict
    files: list[Path] = field(default_factory=list)


def app_command(*, python: str | os.PathLike[str] | None = None, cwd: str | os.PathLike[str] | None = None) -> str:
    """The one command that opens the explorer app: ``jupyter lab`` on the shipped ``notebooks/explore.ipynb``.

    Parameters
    ----------
    python : path, optional
        The interpreter whose environment has JupyterLab (default :data:`sys.executable`); its ``jupyter`` script
        is named by path (``.venv/bin/jupyter``) when it exists beside it, so the command works without
        activating the environment.
    cwd : path, optional
        Paths are written relative to this folder when they are inside it (default the current folder).

    Returns
    -------
    str
        E.g. ``".venv/bin/jupyter lab notebooks/explore.ipynb"`` from a checkout's root.
    """
    cwd = Path.cwd() if cwd is None else Path(cwd)
    jupyter = Path(sys.executable if python is None else python).parent / "jupyter"
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"
    program = _relative(jupyter, cwd) if jupyter.exists() else "jupyter"
    return f"{program} lab {_relative(notebook, cwd)}"


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` if it is inside it, else as it is."""
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def held_out_pairs(linked: LinkedModel, *, samples_per_class: int, seed: int, cache_dir: Path | None,
                   device: str | torch.device, progress: bool) -> PairSet:
    """Fresh pairs for evaluation, minus any sample whose seed the link was fitted on."""
    pairs = sample_pairs(linked.generator, linked.classifier, classes=range(len(linked.class_names)),
                         samples_per_class=samples_per_class, seed=seed, device=device, cache_dir=cache_dir,
                         progress=progress)
    keep = ~np.isin(pairs.seeds, linked.pairs.seeds)
    return PairSet(w=pairs.w[keep], r=pairs.r[keep], labels=pairs.labels[keep], predicted=pairs.predicted[keep],
                   accepted=pairs.accepted[keep], seeds=pairs.seeds[keep])


def _sweep_figure(linked: LinkedModel, out_dir: Path, *, n_units: int, n_seeds: int, device, progress: bool
                  ) -> tuple[Path, list[int]]:
    strongest = np.argsort(-effect_sizes(linked.link, linked.stats))[:n_units].tolist()
    r_base = torch.from_numpy(linked.pairs.r[list(linked.example_seeds(n_seeds))])
    sweep = run_sweep(linked.link, linked.generator, r_base, stats=linked.stats, out_dir=out_dir / "sweep",
                      units=strongest, n_steps=5, mode="range", device=device, progress=progress)
    rows = np.concatenate([sweep.images(unit)[0] for unit in strongest])  # seed 0: (units * steps, H, W, 3)
    return save_png(tile_images(rows, columns=sweep.n_steps, gap=2), out_dir / "sweep.png"), strongest


def run_demo(out_dir: str | Path, *, samples_per_class: int = 200, evaluation_samples: int = 1000, seed: int = 0,
             counterfactual_examples: int = 8, counterfactual_steps: int = 300,
             origin: str = "mushroom", target: str = "tree",
             device: str | torch.device = "cpu", cache_dir: str | Path | None = None,
             weights_dir: str | Path = DEFAULT_WEIGHTS, progress: bool = True) -> DemoReport:
    """The whole Linking-in-Style loop on the toy world, with figures and numbers.

    Loads the toy world; samples linked (w, r) pairs and fits the ridge link; evaluates it on held-out
    pairs (cycle consistency, class agreement, perceptual distance) and compares the spaces (ARI);
    sweeps the units with the largest effect; walks examples of ``origin`` across the decision
    boundary to ``target``; and re-measures the model-card numbers.

    Parameters
    ----------
    out_dir : path
        Output folder (created).
    samples_per_class : int
        Linked pairs sampled per class (psi 0.7) for fitting the link.
    evaluation_samples : int
        Generated and rendered images for the model-card numbers.
    seed : int
        Seed of every random step.
    counterfactual_examples, counterfactual_steps : int
        Examples walked from ``origin`` to ``target``, and the optimisation budget of each.
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
    linked = build_linked_model(world, samples_per_class=samples_per_class, seed=seed, cache_dir=cache_dir,
                                device=device, progress=progress)
    # every sampled pair, accepted or not (a cache hit: the link was fitted on the accepted ones)
    pairs = sample_pairs(world.generator, world.classifier, classes=range(len(CLASS_NAMES)),
                         samples_per_class=samples_per_class, truncation_psi=0.7, seed=seed, device=device,
                         cache_dir=cache_dir, progress=False)
    files = [out_dir / "pairs.npz", out_dir / "pairs.csv"]
    np.savez(files[0], w=pairs.w, r=pairs.r, labels=pairs.labels, predicted=pairs.predicted,
             accepted=pairs.accepted, seeds=pairs.seeds)
    pairs.to_frame().to_csv(files[1], index=False)
    files.append(save_png(sample_grid(world.generator, per_class=8, truncation_psi=0.7, seed=seed),
                           out_dir / "samples.png"))

    test_pairs = held_out_pairs(linked, samples_per_class=max(samples_per_class // 4, 4), seed=seed + 1,
                                cache_dir=cache_dir, device=device, progress=progress)
    evaluation = evaluate_link(linked.link, linked.generator, linked.classifier, test_pairs, device=device)
    files.append(out_dir / "link_metrics.csv")
    evaluation.to_frame().to_csv(files[-1], index=False)
    shown = slice(0, 8)
    cycle = np.concatenate([linked.render(test_pairs.w[shown]), linked.render(evaluation.w_linked[shown])])
    files.append(save_png(tile_images(cycle, columns=len(cycle) // 2, gap=2), out_dir / "link_cycle.png"))
    per_class = int(min(np.bincount(test_pairs.labels).min(), 20))
    similarity = space_similarity(test_pairs.w, test_pairs.r, test_pairs.labels, repetitions=10,
                                  per_class=per_class, n_init=5, seed=seed, progress=False)

    sweep_path, strongest = _sweep_figure(linked, out_dir, n_units=6, n_seeds=3, device=device, progress=progress)
    files.append(sweep_path)

    origin_index, target_index = CLASS_NAMES.index(origin), CLASS_NAMES.index(target)
    examples = np.flatnonzero((test_pairs.labels == origin_index) & test_pairs.accepted)[:counterfactual_examples]
    r_origin = torch.from_numpy(test_pairs.r[examples])
    result = find_counterfactuals(linked.link, linked.generator, linked.classifier, r_origin, origin=origin_index,
                                  target=target_index, max_steps=counterfactual_steps, seed=seed, device=device,
                                  objective="image", progress=progress)
    trajectory = counterfactual_trajectory(linked.link, linked.generator, linked.classifier, r_origin,
                                           result.shift, alphas=np.linspace(0, 1, 7), device=device)
    files.append(save_png(tile_images(trajectory.images.reshape(-1, *trajectory.images.shape[2:]),
                                       columns=len(trajectory.alphas), gap=2), out_dir / "counterfactual.png"))
    files.append(out_dir / "counterfactual_probabilities.png")
    from .plotting.figures import plot_probability_paths

    figure = plot_probability_paths(trajectory.alphas, trajectory.probabilities, CLASS_NAMES,
                                    highlight=(origin_index, target_index))
    figure.savefig(files[-1], dpi=120)

    metrics = evaluate_world(Path(weights_dir), data_dir=cache_dir, n_samples=evaluation_samples, seed=seed,
                             device=device)
    metrics["pairs"] = {"n": len(pairs), "acceptance_rate": pairs.acceptance_rate,
                        "acceptance_by_class": {CLASS_NAMES[c]: rate for c, rate in pairs.acceptance_by_class().items()}}
    metrics["link"] = {row.metric: row.mean for row in evaluation.to_frame().itertuples()}
    metrics["space_similarity"] = similarity.summary().reset_index().to_dict(orient="records")
    metrics["sweep_units"] = strongest
    metrics["counterfactual"] = {
        "origin": origin, "target": target, "examples": len(examples), "success_rate": result.success_rate,
        "median_steps": result.median_steps,
        "most_shifted_units": {int(k): int(v) for k, v in unit_frequency(result.shift, k=5).head(10).items()},
    }
    files.append(out_dir / "model_card_numbers.json")
    files[-1].write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float))
    return DemoReport(out_dir=out_dir, pairs=pairs, metrics=metrics, files=files)
