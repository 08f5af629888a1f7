"""Suite-wide options.

``--run-slow`` also runs the tests marked ``@pytest.mark.slow`` (longer end-to-end checks, see the ``markers`` of
``[tool.pytest.ini_options]`` in pyproject.toml), which are skipped otherwise. The default run (``make test``)
marks nothing it needs as slow: the notebooks, the demo and every unit test run without the option.
"""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked @pytest.mark.slow (skipped by default)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip_slow)
