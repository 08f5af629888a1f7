"""``check`` and ``hint``: what a student calls."""

from __future__ import annotations

from typing import Any

from linkviz.course import lessons_concepts, lessons_faces, lessons_parts, lessons_units
from linkviz.course.context import Course
from linkviz.course.verdict import Exercise, Verdict

__all__ = ["check", "exercise", "exercises", "hint", "solve"]


def exercises() -> dict[str, Exercise]:
    """Every exercise by name, in lesson order."""
    every = (lessons_units.EXERCISES + lessons_parts.EXERCISES + lessons_concepts.EXERCISES
             + lessons_faces.EXERCISES)
    return {item.name: item for item in every}


def exercise(name: str) -> Exercise:
    """The exercise called ``name``; KeyError listing the names otherwise."""
    known = exercises()
    if name not in known:
        raise KeyError(f"no exercise {name!r}; exercises: {', '.join(known)}")
    return known[name]


def check(name: str, answer: Any, *, course: Course | None = None, show: bool = False) -> Verdict:
    """Check an answer against the toy world's ground truth.

    Parameters
    ----------
    name : str
        The exercise, e.g. ``"03.grow_cap"``.
    answer : any
        What the question asks for (a unit number, a part name, True/False, ...).
    course : Course, optional
        The course setting to reuse (faster); default a new one on the default cache.
    show : bool
        Also print the verdict.

    Returns
    -------
    Verdict
        Truthy when correct; prints as ``[name] correct: ...`` or ``not yet: ...`` with a hint.
    """
    item = exercise(name)
    course = Course() if course is None else course
    try:
        correct, message = item.checker(course, answer)
    except (TypeError, ValueError) as error:
        correct, message = False, f"could not read the answer {answer!r}: {error}"
    verdict = Verdict(name, bool(correct), message, "" if correct else item.hints[0])
    if show:
        print(verdict)
    return verdict


def hint(name: str, level: int = 0) -> str:
    """Hint number ``level`` (0 is the gentlest) of an exercise; the last one for a larger level."""
    hints = exercise(name).hints
    return hints[min(max(int(level), 0), len(hints) - 1)]


def solve(name: str, *, course: Course | None = None) -> Any:
    """The reference solution's answer, computed with the library (for teachers and tests)."""
    return exercise(name).solution(Course() if course is None else course)
