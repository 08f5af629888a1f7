"""An exercise's verdict and the registry entry that produces it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Exercise", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`linkviz.course.check`.

    Attributes
    ----------
    exercise : str
        Its name, e.g. ``"03.grow_cap"``.
    correct : bool
    message : str
        What the checker measured, in a sentence or two.
    hint : str
        The first hint when the answer is not yet right; empty when it is.
    """

    exercise: str
    correct: bool
    message: str
    hint: str = ""

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        head = "correct" if self.correct else "not yet"
        text = f"[{self.exercise}] {head}: {self.message}"
        return text + (f"\nhint: {self.hint}" if self.hint else "")

    def _repr_markdown_(self) -> str:
        mark = "✅ **correct**" if self.correct else "❌ **not yet**"
        text = f"`{self.exercise}` {mark}: {self.message}"
        return text + (f"\n\n*hint:* {self.hint}" if self.hint else "")


@dataclass(frozen=True)
class Exercise:
    """One exercise: its question, hints and checker.

    Attributes
    ----------
    name : str
        ``"<lesson>.<slug>"``.
    question : str
    hints : tuple of str
        From gentle to almost the answer.
    checker : callable
        ``checker(course, answer) -> (correct, message)``, computed from the world's ground truth.
    solution : callable
        ``solution(course) -> answer``: the reference solution, computed with the public API.
    """

    name: str
    question: str
    hints: tuple[str, ...]
    checker: Callable[[Any, Any], tuple[bool, str]]
    solution: Callable[[Any], Any]
