"""`python -m linkviz demo` end to end on the embedded world (small sizes)."""

import json

import numpy as np
import pandas as pd
from PIL import Image

from linkviz.__main__ import main


def test_demo_writes_pairs_link_sweep_counterfactual_and_model_card_numbers(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["demo", "--out", str(out), "--samples-per-class", "16", "--evaluation-samples", "60",
          "--counterfactual-examples", "2", "--counterfactual-steps", "40"])
    printed = capsys.readouterr().out
    assert "acceptance" in printed and "Frechet" in printed and "held-out link" in printed

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
