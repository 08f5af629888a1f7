"""One course cache for the whole test session (``LINKVIZ_CACHE`` points the notebooks' kernels at it too)."""

import pytest

from linkviz.course import Course


@pytest.fixture(scope="session")
def course_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("course-cache")


@pytest.fixture(scope="session")
def course(course_cache):
    return Course(cache_dir=course_cache / "course", seed=0)
