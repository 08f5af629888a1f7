"""The layer contract: core <- plotting <- figures <- controllers <- widgets, worlds beside the core (import-linter)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISPLAY_STACK = ("matplotlib", "ipywidgets", "IPython", "ipympl", "seaborn", "ipyplot")


def _loaded_after(statement: str) -> list[str]:
    """Top-level display or world modules in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = (f"import sys; {statement}; print(sorted(m for m in sys.modules if m.split('.')[0] in {DISPLAY_STACK!r} "
            "or m.startswith('linkviz.worlds.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return eval(result.stdout.strip())  # a printed list of str


def test_import_linter_contracts_are_kept():
    """Every contract in pyproject.toml's [tool.importlinter] holds (the same check as running `lint-imports`)."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contract_names_every_layer_once():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    display = ["linkviz.widgets", "linkviz.controllers", "linkviz.figures", "linkviz.plotting"]
    assert layers[:4] == display  # figures may use plotting; controllers may use both
    core = [name.strip() for layer in layers[4:] for name in layer.split(":")]
    assert len(core) == len(set(core))
    packages = {p.name if p.is_dir() else p.stem for p in (ROOT / "linkviz").iterdir()
                if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists())}
    layered = {name.removeprefix("linkviz.") for name in display + core}
    outside = packages - layered
    assert outside == {"worlds", "demo", "course"}, f"modules outside the layer contract: {sorted(outside)}"


def test_import_linkviz_loads_no_display_stack_and_no_world():
    assert _loaded_after("import linkviz") == []


@pytest.mark.parametrize("package", ["linkviz.controllers", "linkviz.figures", "linkviz.plotting"])
def test_plotting_and_controllers_load_no_widget_toolkit(package):
    loaded = _loaded_after(f"import {package}")
    assert not [m for m in loaded if m.split(".")[0] in ("ipywidgets", "IPython", "ipympl")]
    assert not [m for m in loaded if m.startswith("linkviz.worlds")]


def test_worlds_load_on_first_use():
    loaded = _loaded_after("import linkviz; world = linkviz.load_toy_world()")
    assert "linkviz.worlds.toy" in loaded
    assert not [m for m in loaded if m.split(".")[0] in DISPLAY_STACK]


def test_toy_and_faces_worlds_satisfy_the_world_protocol():
    import linkviz
    from linkviz.world import GroundTruthWorld, World

    toy = linkviz.load_toy_world()
    assert isinstance(toy, World) and isinstance(toy, GroundTruthWorld)
    from dataclasses import fields

    from linkviz.worlds.faces import FacesWorld

    assert {"classifier", "generator"} == {field.name for field in fields(FacesWorld)}
    assert isinstance(FacesWorld.class_names, property) and not hasattr(FacesWorld, "true_parts")


def test_the_toy_world_offers_a_part_segmenter_and_a_probe_set():
    import linkviz
    from linkviz.dissection.probing_world import ProbingWorld
    from linkviz.world import PartSegmentingWorld
    from linkviz.worlds.faces import FacesWorld

    toy = linkviz.load_toy_world()
    assert isinstance(toy, PartSegmentingWorld) and isinstance(toy, ProbingWorld)
    assert toy.dissection_layer == "layer4"
    assert not hasattr(FacesWorld, "part_segmenter") and not hasattr(FacesWorld, "dissection_probe")


def test_load_world_by_name_rejects_unknown_names():
    from linkviz.worlds import load_world

    with pytest.raises(ValueError, match="unknown world 'mars'; available worlds: \\['faces', 'toy'\\]"):
        load_world("mars")


def test_no_module_is_longer_than_400_lines():
    files = [p for p in (ROOT / "linkviz").rglob("*.py") if not p.is_relative_to(ROOT / "linkviz" / "widgets")]
    files += list((ROOT / "widgets").glob("*.py"))
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
