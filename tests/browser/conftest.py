"""The browser tests' session fixtures: one JupyterLab server (``lab``) and one headless Chromium (``browser``)."""

from lab_session import browser, lab  # noqa: F401  (session fixtures, see lab_session.py)
