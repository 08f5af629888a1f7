"""notebooks/figures.ipynb: the paper figures of the toy and faces worlds as PDF and SVG, in a folder the user
names, with TrueType fonts only, and the same bytes on every run."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "figures.ipynb"
EXPECTED = (
    "toy_link_quality", "toy_tuning_strips", "toy_population", "toy_counterfactual", "toy_dissection_summary",
    "toy_unit_card", "faces_link_quality", "faces_tuning_strips", "faces_counterfactual",
)
TRUETYPE = {"TrueType", "Type0", "CIDFontType2"}  # Type 42: simple TrueType, or composite with a CIDFontType2


def font_subtypes(pdf: bytes) -> list[str]:
    """The ``/Subtype`` of every font dictionary (``/Type /Font``) of a PDF whose objects are not compressed
    (matplotlib writes them so: only content streams are compressed)."""
    subtypes = []
    for body in re.findall(rb"\d+ 0 obj(.*?)endobj", pdf, flags=re.DOTALL):
        dictionary = body.split(b"stream", 1)[0]
        if re.search(rb"/Type\s*/Font\b", dictionary):
            subtype = re.search(rb"/Subtype\s*/(\w+)", dictionary)
            subtypes.append(subtype.group(1).decode() if subtype else "?")
    return subtypes


def test_font_subtypes_reads_font_dictionaries_only():
    pdf = (b"%PDF-1.4\n1 0 obj << /Type /Font /Subtype /Type0 /DescendantFonts [2 0 R] >> endobj\n"
           b"2 0 obj << /Type /Font /Subtype /CIDFontType2 >> endobj\n"
           b"3 0 obj << /Type /XObject /Subtype /Image /Length 3 >> stream\nabc\nendstream endobj\n"
           b"4 0 obj << /Type /Font /Subtype /Type3 >> endobj\n")
    assert font_subtypes(pdf) == ["Type0", "CIDFontType2", "Type3"]


def _run(folder: Path, cache: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINKVIZ_FIGURES", str(folder))
    monkeypatch.setenv("LINKVIZ_CACHE", str(cache))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


def test_notebook_uses_the_public_api_and_names_its_folder_first():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert 'os.environ.get("LINKVIZ_FIGURES", "figures-output")' in code[0]
    private = re.compile(r"\blinkviz(\.\w+)*\._\w+|from linkviz\S* import _")
    assert not [source for source in code if private.search(source)]
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stripped
    assert "figures-output/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.timeout(1800)
def test_figures_notebook_writes_type42_pdfs_and_svgs_that_repeat_byte_for_byte(tmp_path, monkeypatch):
    """Two runs into two folders, the second reading what the first cached (pairs, sweeps, segmenters), as a
    user's second run does: the figures are drawn again from the same data and must have the same bytes (the
    results themselves come out of training and threads, so they are not recomputed for an exact comparison)."""
    runs = [tmp_path / "first", tmp_path / "second"]
    for run in runs:
        run.mkdir()
        _run(run / "figures", tmp_path / "cache", run, monkeypatch)
    first, second = (run / "figures" for run in runs)
    assert sorted(p.name for p in first.iterdir()) == sorted(f"{n}.{s}" for n in EXPECTED for s in ("pdf", "svg"))
    for name in EXPECTED:
        pdf = (first / f"{name}.pdf").read_bytes()
        subtypes = font_subtypes(pdf)
        assert subtypes and set(subtypes) <= TRUETYPE, f"{name}.pdf embeds fonts {subtypes}"
        assert b"/Type1" not in pdf and b"/Type3" not in pdf
        assert b"/CIDFontType2" in pdf or b"/TrueType" in pdf
        for suffix in ("pdf", "svg"):
            assert (second / f"{name}.{suffix}").read_bytes() == (first / f"{name}.{suffix}").read_bytes(), (
                f"{name}.{suffix} differs between two runs")
