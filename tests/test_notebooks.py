"""Notebooks run top to bottom on the embedded world."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
# figures.ipynb runs twice in test_figures_notebook.py (its bytes must repeat); byo_models.ipynb needs models that
# test_byo_notebook.py builds; the course has its own tests
NOTEBOOKS = sorted(path for path in (ROOT / "notebooks").glob("*.ipynb")
                   if path.name not in ("figures.ipynb", "byo_models.ipynb"))


#: Seconds a whole notebook may take. Each runs in about 3 minutes or less on an idle 2-core machine with a cold
#: cache; the bar leaves room for a machine loaded several times over (the suite-wide default is 600 s per test).
NOTEBOOK_TIMEOUT = 1800


@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, monkeypatch):
    # the kernel inherits the environment: a cold cache of its own, never the user's ~/.cache/linkviz
    monkeypatch.setenv("LINKVIZ_CACHE", str(tmp_path / "cache"))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=NOTEBOOK_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert not (tmp_path / "sweeps").exists() and not list(tmp_path.glob("*.html"))  # nothing beside the notebook


def test_notebooks_write_their_files_outside_the_repository():
    """Reports go to a temporary folder (``OUTPUT``) and caches and sweeps under ``linkviz.default_cache_root()``,
    never to paths relative to the notebook, and the files older runs left beside the notebooks are ignored by git."""
    relative = re.compile(r"""((out_dir|cache_dir)\s*=\s*['"])|(write_\w+\([^)]*[(,]\s*['"][^'"]*\.html['"])""")
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert not relative.search(cell.source), f"{path.name} writes a relative path:\n{cell.source}"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "sweeps/" in ignored and "notebooks/*.html" in ignored
