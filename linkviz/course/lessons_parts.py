"""Exercises of lessons 03 (tuning, flow and parts), 04 (metrics) and 05 (sparsity)."""

from __future__ import annotations

import numpy as np

from linkviz.course.measure import hoyer_sparsity, unit_part_changes
from linkviz.course.verdict import Exercise

__all__ = ["EXERCISES", "SPARSITY_CANDIDATES", "TUNING_CANDIDATES", "cap_growth", "part_area_changes",
           "unit_sparsity"]

#: How many of the strongest units (by effect size) the tuning and sparsity exercises consider.
TUNING_CANDIDATES = 12
SPARSITY_CANDIDATES = 6


def cap_growth(course, unit: int) -> float:
    """Mean relative change of the cap's area on mushrooms when ``unit`` goes from its minimum to its maximum."""
    frame = unit_part_changes(course, unit, class_name="mushroom")
    return float(frame.query("label == 'cap' and metric == 'area'")["change"].iloc[0])


def _growths(course) -> dict[int, float]:
    return {unit: cap_growth(course, unit) for unit in course.strongest_units(TUNING_CANDIDATES)}


def _check_grow_cap(course, answer) -> tuple[bool, str]:
    unit = int(answer)
    best = max(_growths(course).values())
    growth = cap_growth(course, unit)
    bar = max(0.1, 0.5 * best)
    return growth >= bar, (f"tuning unit {unit} up changes the cap's area by {growth:+.0%} on mushrooms; the best of "
                           f"the {TUNING_CANDIDATES} strongest units grows it by {best:+.0%} (at least {bar:+.0%} "
                           "counts).")


def _grow_cap_solution(course) -> int:
    growths = _growths(course)
    return max(growths, key=growths.get)


def part_area_changes(course) -> dict[str, float]:
    """Relative area change of every part on mushrooms when the strongest unit is tuned up."""
    frame = unit_part_changes(course, course.strongest_units(1)[0], class_name="mushroom")
    return dict(frame.query("metric == 'area'")[["label", "change"]].itertuples(index=False))


def _check_biggest_part(course, answer) -> tuple[bool, str]:
    changes = part_area_changes(course)
    if answer not in changes:
        return False, f"{answer!r} is not a part; parts: {sorted(changes)}."
    size = {label: abs(change) for label, change in changes.items()}
    best = max(size.values())
    return size[answer] >= 0.8 * best, (f"the {answer}'s area changes by {changes[answer]:+.0%}; the largest change "
                                        f"is {best:.0%} in size (within 80% of it counts).")


def _cap_luminance(course) -> float:
    frame = unit_part_changes(course, course.strongest_units(1)[0], class_name="mushroom")
    return float(frame.query("label == 'cap' and metric == 'luminance'")["change"].iloc[0])


def _check_cap_luminance(course, answer) -> tuple[bool, str]:
    change = _cap_luminance(course)
    truth = "brighter" if change > 0 else "darker"
    if str(answer).lower() not in ("brighter", "darker"):
        return False, f"answer 'brighter' or 'darker'; got {answer!r}."
    return str(answer).lower() == truth, f"the cap's mean luminance changes by {change * 255:+.1f} of 255."


def unit_sparsity(course, unit: int) -> float:
    """Hoyer sparsity of a unit's per-part relative area changes on mushrooms."""
    frame = unit_part_changes(course, unit, class_name="mushroom").query("metric == 'area'")
    return hoyer_sparsity(frame["change"].to_numpy())


def _sparsities(course) -> dict[int, float]:
    return {unit: unit_sparsity(course, unit) for unit in course.strongest_units(SPARSITY_CANDIDATES)}


def _check_sparsest(course, answer) -> tuple[bool, str]:
    sparsity = _sparsities(course)
    unit = int(answer)
    if unit not in sparsity:
        return False, f"unit {unit} is not one of the candidates {sorted(sparsity)}."
    best = max(sparsity.values())
    return sparsity[unit] >= best - 0.05, (f"unit {unit} has sparsity {sparsity[unit]:.2f}; the sparsest candidate "
                                           f"has {best:.2f} (within 0.05 counts).")


EXERCISES = (
    Exercise("03.grow_cap", f"Among the {TUNING_CANDIDATES} strongest units, find one that makes a mushroom's cap "
             "larger when you tune it up.",
             ("`course.strongest_units(12)` lists the candidates; open them in a `UnitTuner` on a mushroom.",
              "Switch the part overlay on and watch the red cap between the lowest and highest value.",
              "`linkviz.course.measure.unit_part_changes(course, unit)` measures every part for you."),
             _check_grow_cap, _grow_cap_solution),
    Exercise("04.biggest_part", "Tune the strongest unit (`course.strongest_units(1)[0]`) on mushrooms: which part's "
             "area changes the most (either sign)?",
             ("`unit_part_changes(course, unit)` gives one row per part and metric.",
              "Look at the rows with metric 'area' and compare the absolute changes."),
             _check_biggest_part, lambda course: max((abs(v), k) for k, v in part_area_changes(course).items())[1]),
    Exercise("04.cap_luminance", "Tuning the same unit up: does the cap get 'brighter' or 'darker'?",
             ("The luminance row of the cap in `unit_part_changes(course, unit)`.",),
             _check_cap_luminance, lambda course: "brighter" if _cap_luminance(course) > 0 else "darker"),
    Exercise("05.sparsest", f"Among the {SPARSITY_CANDIDATES} strongest units, which one changes the fewest parts "
             "(highest Hoyer sparsity of its part-area changes on mushrooms)?",
             ("Sparsity is 1 when a unit changes one part only and 0 when it changes all parts alike.",
              "`linkviz.course.measure.hoyer_sparsity` of each unit's area changes."),
             _check_sparsest, lambda course: max((v, k) for k, v in _sparsities(course).items())[1]),
)
