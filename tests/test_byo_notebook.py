"""notebooks/byo_models.ipynb, the bring-your-own-models recipe (issue 17, item 5), run on models built here: a
StyleGAN2-style generator of 1000 classes from a stand-in for the StyleGAN repository (``tests/models/official_layout``),
pickled as the training loop writes snapshots (with a StyleGAN-XL discriminator that needs timm, which is not
installed), and a ResNet with torchvision's module names given by a factory function."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "byo_models.ipynb"
MODELS = ROOT / "tests" / "models"
if str(MODELS) not in sys.path:  # the snapshot helpers, importable under a stable name (as tests/models/conftest.py)
    sys.path.insert(0, str(MODELS))

from official_snapshot import LAYOUT, write_snapshot

#: Seconds the notebook may take: about a minute on an idle 2-core machine, room for a loaded one.
TIMEOUT = 600


def _code(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_notebook_is_stripped_and_uses_only_the_public_api():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") or cell.get("execution_count") for cell in notebook.cells
                   if cell.cell_type == "code")
    code = "\n".join(_code(notebook))
    imported = set(re.findall(r"^\s*(?:from|import) (linkviz[\w.]*)", code, flags=re.MULTILINE))
    assert imported == {"linkviz", "linkviz.widgets"}
    assert not re.search(r"\blinkviz(\.\w+)*\._\w+", code)
    for shown in ('resnet50(weights=weights)', 'load_stylegan_pickle(GENERATOR_PICKLE, allow_unpickle=True, device="auto")',
                  'penultimate_range=(0.0, None)', "classes=CLASSES"):
        assert shown in code


@pytest.mark.timeout(TIMEOUT + 60)
def test_notebook_runs_on_a_snapshot_of_an_official_layout_generator(tmp_path, monkeypatch):
    snapshot = tmp_path / "network-snapshot-000000.pkl"
    write_snapshot(snapshot, c_dim=1000)
    settings = {
        "LINKVIZ_BYO_GENERATOR": str(snapshot), "LINKVIZ_BYO_STYLEGAN_REPO": str(LAYOUT),
        "LINKVIZ_BYO_CLASSIFIER": "torchvision_layout_resnet:resnet_classifier", "LINKVIZ_BYO_CLASSES": "1,2,3",
        "LINKVIZ_BYO_SAMPLES_PER_CLASS": "8", "LINKVIZ_BYO_MAX_STEPS": "5",
        # random weights classify almost nothing as its conditioning class; keep the default 1 for trained models
        "LINKVIZ_BYO_ACCEPTED_ONLY": "0",
        "LINKVIZ_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(MODELS), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert re.search(r"Generator on cpu: z 16, w 8 x 16, 1000 classes, 32 px", printed), printed
    assert re.search(r"\b24 pairs, .* link 16 x 64", printed), printed
    assert re.search(r"success \d+%; clamped values so far", printed), printed  # the counterfactual ran
