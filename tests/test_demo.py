"""`python -m linkviz demo` end to end on the embedded world (small sizes)."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from linkviz.__main__ import main
from linkviz.demo import app_command

ROOT = Path(__file__).resolve().parents[1]


def test_demo_writes_pairs_link_sweep_counterfactual_and_model_card_numbers(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["demo", "--out", str(out), "--samples-per-class", "16", "--evaluation-samples", "60",
          "--counterfactual-examples", "2", "--counterfactual-steps", "40"])
    printed = capsys.readouterr().out
    assert "acceptance" in printed and "Frechet" in printed and "held-out link" in printed
    *_, where, app = printed.strip().splitlines()  # the demo ends by saying where its figures are and how to go on
    assert where == (f"figures are in {out}/ (samples.png, link_cycle.png, sweep.png, counterfactual.png, "
                     "counterfactual_probabilities.png)")
    assert app == f"open the app: {app_command()}"

    pairs = np.load(out / "pairs.npz")
    assert pairs["w"].shape == (80, 156) and pairs["r"].shape == (80, 256)
    assert len(np.unique(pairs["seeds"])) == 80
    np.testing.assert_array_equal(pairs["accepted"], pairs["predicted"] == pairs["labels"])

    assert np.asarray(Image.open(out / "samples.png")).shape == (2 * 10 * 64, 2 * 8 * 64, 3)
    for figure in ("link_cycle.png", "sweep.png", "counterfactual.png", "counterfactual_probabilities.png"):
        assert Image.open(out / figure).size[0] > 100

    link = pd.read_csv(out / "link_metrics.csv").set_index("metric")["mean"]
    assert link["class_agreement"] >= 0.6 and link["w_mse"] >= 0

    numbers = json.loads((out / "model_card_numbers.json").read_text())
    assert 0.0 <= numbers["generated_agreement_psi_0.7"]["all"] <= 1.0
    assert numbers["pairs"]["n"] == 80
    assert numbers["counterfactual"]["examples"] == 2
    assert len(numbers["sweep_units"]) == 6


def test_app_command_names_the_environments_jupyter_and_the_shipped_notebook(tmp_path):
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "jupyter").touch()
    notebook = ROOT / "notebooks" / "explore.ipynb"
    assert notebook.is_file()
    assert app_command(python=venv / "python", cwd=tmp_path) == f".venv/bin/jupyter lab {notebook}"
    assert app_command(python=tmp_path / "elsewhere" / "python", cwd=ROOT) == "jupyter lab notebooks/explore.ipynb"


def test_the_printed_app_command_runs_in_this_environment():
    program, verb, notebook = shlex.split(app_command(cwd=ROOT))
    assert (ROOT / notebook).is_file() and verb == "lab"
    if program == "jupyter":  # no jupyter beside this interpreter: the command relies on PATH
        program = str(Path(sys.executable).parent / "jupyter")
    version = subprocess.run([program, "lab", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             check=False)
    assert version.returncode == 0 and version.stdout.strip()[0].isdigit(), version.stderr
