"""Exercises of lessons 01 (what is a unit) and 02 (linking)."""

from __future__ import annotations

import numpy as np

from linkviz.course.verdict import Exercise
from linkviz.linking import evaluate_link
from linkviz.pairs import sample_pairs

__all__ = ["EXERCISES", "cycle_agreement"]


def _n_units(course) -> int:
    """Width of r, read off the classifier's output on one generated image."""
    generator = course.world.generator
    z = np.random.default_rng(course.seed).standard_normal((1, generator.z_dim)).astype(np.float32)
    import torch

    c = torch.zeros(1, generator.c_dim)
    c[0, 0] = 1.0
    with torch.no_grad():
        _, r = course.world.classifier.forward_generated(generator.synthesis(generator.mapping(torch.from_numpy(z), c)))
    return int(r.shape[1])


def _check_n_units(course, answer) -> tuple[bool, str]:
    truth = _n_units(course)
    return int(answer) == truth, f"you said {answer}; the classifier's penultimate layer returned r of width {truth}."


def _mean_r(course, class_name: str) -> np.ndarray:
    linked = course.linked
    rows = linked.examples_of_class(linked.class_index(class_name))
    return linked.pairs.r[rows].mean(axis=0)


def _check_tree_unit(course, answer) -> tuple[bool, str]:
    mean = _mean_r(course, "tree")
    unit = int(answer)
    if not 0 <= unit < len(mean):
        return False, f"unit {answer} does not exist: r has units 0..{len(mean) - 1}."
    best = float(mean.max())
    return bool(mean[unit] >= 0.9 * best), (f"unit {unit} averages {mean[unit]:.3f} on generated trees; the most "
                                            f"active unit averages {best:.3f} (within 10% counts).")


def _check_link_shape(course, answer) -> tuple[bool, str]:
    truth = (int(course.world.generator.w_dim), int(course.linked.pairs.r.shape[1]))
    given = tuple(int(v) for v in answer)
    return given == truth, f"you said {given}; A maps r ({truth[1]} values) to w ({truth[0]} values): shape {truth}."


def cycle_agreement(course) -> float:
    """Share of held-out pairs (6 per class, seed + 1) whose cycled image keeps the original's class."""
    world = course.world
    test_pairs = sample_pairs(world.generator, world.classifier, classes=range(len(world.class_names)),
                              samples_per_class=6, seed=course.seed + 1, cache_dir=course.cache_dir, progress=False)
    quality = evaluate_link(course.linked.link, world.generator, world.classifier, test_pairs)
    return float(quality.class_agreement.mean())


def _check_cycle(course, answer) -> tuple[bool, str]:
    truth = cycle_agreement(course)
    return abs(float(answer) - truth) <= 0.05, (f"you said {float(answer):.3f}; the held-out class agreement is "
                                                 f"{truth:.3f} (within 0.05 counts).")


EXERCISES = (
    Exercise("01.n_units", "How many units does r, the classifier's penultimate layer, have?",
             ("Run the classifier on a generated image: `logits, r = world.classifier.forward_generated(images)`.",
              "`linked.pairs.r` holds r of every base pair; look at its shape."),
             _check_n_units, lambda course: int(course.linked.pairs.r.shape[1])),
    Exercise("01.tree_unit", "Which unit of r is, on average, the most active on generated trees?",
             ("`linked.examples_of_class(1)` are the base pairs classified as trees.",
              "Average `linked.pairs.r` over those rows and take the argmax."),
             _check_tree_unit, lambda course: int(np.argmax(_mean_r(course, "tree")))),
    Exercise("02.link_shape", "The link is w = A r + b. What is the shape of A, as (rows, columns)?",
             ("w has `world.generator.w_dim` values.", "r has one value per unit."),
             _check_link_shape, lambda course: (course.linked.link.w_dim, course.linked.link.r_dim)),
    Exercise("02.cycle", "On held-out pairs (6 per class, seed 1), what share of cycled images keeps its class?",
             ("`linkviz.evaluate_link(linked.link, world.generator, world.classifier, test_pairs)`.",
              "Its `class_agreement` holds one 0/1 per pair; take the mean."),
             _check_cycle, cycle_agreement),
)
