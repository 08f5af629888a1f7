"""Packaging and layering: every subpackage ships, and the core never imports a display stack."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_wheels():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "linkviz").rglob("__init__.py")}
    assert on_disk | {"linkviz.widgets"} == listed


def test_core_imports_no_display_stack():
    code = ("import sys, linkviz, linkviz.linking, linkviz.tuning, linkviz.counterfactual, linkviz.worlds.faces, "
            "linkviz.plotting, linkviz.quantify, linkviz.tracking, linkviz.segmentation, linkviz.dissection; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'matplotlib', 'ipywidgets', 'IPython', 'seaborn', 'ipyplot'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
