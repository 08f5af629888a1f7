"""A teaching course on the toy world: exercises a student answers with ``check`` and ``hint``.

The lessons are the notebooks in ``notebooks/course/``. Every checker computes its verdict from the toy world's
ground truth (renders, true part masks, the planted shortcut) or from library results on it, with fixed seeds.
"""

from linkviz.course.context import Course
from linkviz.course.registry import check, exercise, exercises, hint, solve
from linkviz.course.verdict import Exercise, Verdict

__all__ = ["Course", "Exercise", "Verdict", "check", "exercise", "exercises", "hint", "solve"]
