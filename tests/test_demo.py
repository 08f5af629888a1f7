"""`python -m linkviz demo` end to end on the embedded world (small sizes)."""

import json

import numpy as np
from PIL import Image

from linkviz.__main__ import main


def test_demo_writes_pairs_grid_and_model_card_numbers(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["demo", "--out", str(out), "--samples-per-class", "6", "--evaluation-samples", "60"])
    printed = capsys.readouterr().out
    assert "acceptance" in printed and "Frechet" in printed

    pairs = np.load(out / "pairs.npz")
    assert pairs["w"].shape == (30, 128) and pairs["r"].shape == (30, 256)
    assert len(np.unique(pairs["seeds"])) == 30
    np.testing.assert_array_equal(pairs["accepted"], pairs["predicted"] == pairs["labels"])

    grid = np.asarray(Image.open(out / "samples.png"))
    assert grid.shape == (2 * 10 * 64, 2 * 8 * 64, 3)

    numbers = json.loads((out / "model_card_numbers.json").read_text())
    assert 0.0 <= numbers["generated_agreement_psi_0.7"]["all"] <= 1.0
    assert numbers["pairs"]["n"] == 30
    assert numbers["frechet"]["ratio"] > 0


def test_demo_reuses_its_cache(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--samples-per-class", "4", "--evaluation-samples", "20"]
    main(args)
    first = np.load(out / "pairs.npz")["r"].copy()
    main(args)
    np.testing.assert_array_equal(np.load(out / "pairs.npz")["r"], first)
