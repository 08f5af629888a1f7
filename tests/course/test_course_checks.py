"""check / hint / Verdict behave as a student expects, without computing anything heavy."""

import pytest

import linkviz.course as course_api
from linkviz.course import Verdict, check, exercises, hint
from linkviz.course.lessons_concepts import resolve_concept
from linkviz.course.measure import hoyer_sparsity

LESSONS = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10")


def test_every_lesson_has_one_to_three_exercises_with_hints():
    names = list(exercises())
    for lesson in LESSONS:
        assert 1 <= sum(name.startswith(lesson + ".") for name in names) <= 3, lesson
    assert all(item.hints for item in exercises().values())


def test_hint_levels_clamp_and_unknown_names_list_the_exercises():
    first = exercises()["03.grow_cap"].hints
    assert hint("03.grow_cap") == first[0] and hint("03.grow_cap", 99) == first[-1]
    with pytest.raises(KeyError, match="03.grow_cap"):
        hint("03.grow_hat")


def test_a_verdict_reads_as_correct_or_not_yet_with_a_hint():
    good, bad = Verdict("x.y", True, "measured 1"), Verdict("x.y", False, "measured 0", "look again")
    assert bool(good) and not bool(bad)
    assert str(good) == "[x.y] correct: measured 1"
    assert str(bad).startswith("[x.y] not yet: measured 0") and "hint: look again" in str(bad)


def test_an_unreadable_answer_is_not_yet_instead_of_an_error(course):
    verdict = check("02.link_shape", None, course=course)
    assert not verdict and "could not read the answer None" in verdict.message and verdict.hint


def test_free_text_concepts_resolve_to_parts():
    parts = ("background", "stem", "cap", "crown")
    assert resolve_concept("The sky-blue BACKGROUND", parts) == "background"
    assert resolve_concept("its crown", parts) == "crown"
    assert resolve_concept("wheels", parts) is None


def test_hoyer_sparsity_is_one_for_a_single_part_and_zero_for_all_alike():
    assert hoyer_sparsity([0, 0, 0.5, 0]) == pytest.approx(1.0)
    assert hoyer_sparsity([0.2, -0.2, 0.2, 0.2]) == pytest.approx(0.0)


def test_the_course_package_exports_check_and_hint():
    assert {"check", "hint", "Course"} <= set(course_api.__all__)
