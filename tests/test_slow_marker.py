"""The ``--run-slow`` option of tests/conftest.py: slow tests are skipped unless it is given."""

from pathlib import Path

pytest_plugins = ["pytester"]

_CONFTEST = (Path(__file__).parent / "conftest.py").read_text()


def test_slow_tests_run_only_with_run_slow(pytester):
    pytester.makeconftest(_CONFTEST)
    pytester.makeini('[pytest]\nmarkers = slow: longer end-to-end checks (run with --run-slow)\naddopts = --strict-markers\n')
    pytester.makepyfile("""
        import pytest

        @pytest.mark.slow
        def test_long():
            pass

        def test_short():
            pass
    """)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=1)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--run-slow").assert_outcomes(passed=2)
