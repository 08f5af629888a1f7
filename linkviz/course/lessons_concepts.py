"""Exercises of lessons 06 (the planted shortcut), 07 (Network Dissection), 08 (LaViSE) and 09 (disagreement)."""

from __future__ import annotations

import numpy as np

from linkviz.course.lessons_parts import cap_growth
from linkviz.course.verdict import Exercise

__all__ = ["EXERCISES", "best_cap_detector", "lavise_words", "resolve_concept", "shortcut_accuracies"]


def resolve_concept(answer: str, part_names: tuple[str, ...]) -> str | None:
    """The part a free-text answer names (``"sky-blue background"`` -> ``"background"``), or None."""
    text = str(answer).lower()
    if any(word in text for word in ("background", "sky", "blue")):
        return "background"
    named = [part for part in part_names if part in text]
    return named[0] if named else None


def shortcut_accuracies(course, *, per_class: int = 40) -> dict[str, float]:
    """Tree accuracy on renders before and after moving every background hue out of the sky-blue band."""
    from linkviz.worlds.toy import render, sample_factors
    from linkviz.worlds.toy.evaluation import shortcut_reliance

    labels = np.repeat(np.arange(len(course.world.class_names)), per_class)
    test_set = render(sample_factors(labels, seed=course.seed + 7))
    return shortcut_reliance(course.world.classifier, test_set, seed=course.seed)


def _check_shortcut(course, answer) -> tuple[bool, str]:
    from linkviz.worlds.toy import SHORTCUT_CLASS

    concept = resolve_concept(answer, course.world.part_names)
    if concept is None:
        return False, f"{answer!r} names no part of the toy world; parts: {list(course.world.part_names)}."
    accuracy = shortcut_accuracies(course)
    before, after = accuracy["accuracy_with_shortcut"], accuracy["accuracy_without_shortcut"]
    measured = (f"moving only the background hue out of sky blue takes {SHORTCUT_CLASS} accuracy from "
                f"{before:.0%} to {after:.0%}")
    if concept != "background":
        return False, (f"the {concept} is part of a {SHORTCUT_CLASS}, but it is not the concept the classifier "
                       "leans on most.")
    return before - after >= 0.1, measured + " (a drop of 10 points or more shows the reliance)."


def best_cap_detector(course) -> int:
    """The unit of ``layer4`` with the highest IoU for the part concept ``cap``."""
    result = course.dissection
    return int(np.nanargmax(result.iou[:, result.label_names.index("cap")]))


def _check_cap_detector(course, answer) -> tuple[bool, str]:
    result = course.dissection
    iou = result.iou[:, result.label_names.index("cap")]
    unit = int(answer)
    if not 0 <= unit < len(iou):
        return False, f"unit {answer} does not exist: layer4 has units 0..{len(iou) - 1}."
    best = float(np.nanmax(iou))
    return bool(iou[unit] >= 0.8 * best), (f"unit {unit} has IoU {iou[unit]:.3f} with 'cap'; the best detector has "
                                           f"{best:.3f} (within 80% counts).")


def lavise_words(course, unit: int, *, n: int = 5) -> list[str]:
    """LaViSE's ``n`` first words for ``unit``, voted among the toy world's concept words (seeded, small head)."""
    return course.remember(f"lavise-words-{int(unit)}", lambda: _lavise_words(course, int(unit)))[:n]


def _lavise_words(course, unit: int) -> list[str]:
    from linkviz.lavise import explain_units, load_glove_6b_50d, train_explainer
    from linkviz.worlds.toy import CLASS_NAMES, COLOUR_NAMES, PART_NAMES, TEXTURE_NAMES

    space = load_glove_6b_50d()
    world = course.world
    explainer = train_explainer(world.classifier, world.dissection_layer, course.probe, space, seed=course.seed,
                                epochs=3, progress=False)
    entities = list(CLASS_NAMES + PART_NAMES[1:] + tuple(COLOUR_NAMES) + tuple(TEXTURE_NAMES))
    explanation = explain_units(world.classifier, explainer, course.probe, space, units=[int(unit)], p=10,
                                entities=entities, progress=False)
    return list(explanation.words(unit))


def _check_lavise(course, answer) -> tuple[bool, str]:
    unit = best_cap_detector(course)
    words = lavise_words(course, unit)
    truth = "cap" in words
    return bool(answer) == truth, f"LaViSE's first words for unit {unit}: {', '.join(words)}."


def _check_disagree(course, answer) -> tuple[bool, str]:
    unit = best_cap_detector(course)
    growth = cap_growth(course, unit)
    truth = abs(growth) >= 0.1
    return bool(answer) == truth, (f"tuning unit {unit} (the best 'cap' detector) changes the cap's area by "
                                   f"{growth:+.0%} on mushrooms; 10% or more in size counts as changing it.")


EXERCISES = (
    Exercise("06.tree_shortcut", "Which concept does the classifier use to call a tree a tree? Name it in words.",
             ("Walk other classes to 'tree' with counterfactuals and watch what changes first.",
              "It is not a part of the tree itself.",
              "Look at the image border."),
             _check_shortcut, lambda course: "the sky-blue background"),
    Exercise("07.cap_detector", "Which unit of layer4 is the best Network Dissection detector of the part 'cap'?",
             ("`result.iou` has one row per unit and one column per concept (`result.label_names`).",
              "Take the column of 'cap' and its argmax."),
             _check_cap_detector, best_cap_detector),
    Exercise("08.lavise_says_cap", "Is 'cap' among LaViSE's first five words (toy concept words only) for the best "
             "cap detector? Answer True or False.",
             ("`linkviz.course.lessons_concepts.lavise_words(course, unit)` runs LaViSE the way the checker does.",),
             _check_lavise, lambda course: "cap" in lavise_words(course, best_cap_detector(course))),
    Exercise("09.detector_edits_cap", "Does tuning the best 'cap' detector in the link change the cap's area by 10% "
             "or more on mushrooms? Answer True or False.",
             ("Dissection says what a unit responds to; tuning says what the link draws when it moves.",
              "`linkviz.course.lessons_parts.cap_growth(course, unit)`."),
             _check_disagree, lambda course: abs(cap_growth(course, best_cap_detector(course))) >= 0.1),
)
