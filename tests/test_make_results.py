"""``docs/make_results.py``: measured tables say which of their models have left the zoo."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from napari_compand import zoo

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture()
def make_results(monkeypatch):
    monkeypatch.syspath_prepend(str(DOCS))
    return importlib.import_module("make_results")


def test_a_measured_table_names_its_retired_models_once(make_results, tmp_path):
    retired, successor = next(iter(zoo.RETIRED.items()))
    shipped = zoo.names()[0]
    page = tmp_path / "table.md"
    rows = [f"| 3 | {shipped} | 30.00 / 0.900 |", f"| 3 | {retired} x8 in bin | 31.00 / 0.910 |"]
    page.write_text("| bits | method | colour |\n|---|---|---|\n" + "\n".join(rows) + "\n")

    make_results.refresh_retired_note(page)
    once = page.read_text()
    make_results.refresh_retired_note(page)  # again: the note is replaced, not added

    assert page.read_text() == once
    assert once.count(make_results.RETIRED_NOTE) == 1
    note = once.split(make_results.RETIRED_NOTE)[1]
    assert f"`{retired}` (use `{successor}`)" in note
    assert f"`{shipped}`" not in note


def test_no_note_when_every_model_still_ships(make_results, tmp_path):
    page = tmp_path / "table.md"
    text = f"| bits | method |\n|---|---|\n| 3 | {zoo.names()[0]} |\n"
    page.write_text(text)
    make_results.refresh_retired_note(page)
    assert page.read_text() == text


def test_relayout_puts_the_papers_numbers_beside_measured_rows(make_results, tmp_path, monkeypatch):
    """The measured tables are laid out again from their CSVs, with the paper's grey and
    colour numbers, and copied into the results page between its markers."""
    from napari_compand import paper_tables
    from napari_compand.degrade import Degradation, DegradationMode
    from napari_compand.evaluation import Scores

    three = Degradation(DegradationMode.QUANTIZE, bits=3)
    rows = [
        paper_tables.Method("Eq. 2 as-is", three, None),
        paper_tables.Method("expand-3bit/conv4_1", three, None, "conv4_1"),
    ]
    results = [
        paper_tables.Result(m, tone, Scores(25.0 + i, 0.8, 4))
        for i, m in enumerate(rows)
        for tone in ("grey", "colour")
    ]
    results_dir, docs = tmp_path / "results", tmp_path
    results_dir.mkdir()
    paper_tables.write_csv(results, results_dir / "set5_set14.csv")
    page = docs / "results.md"
    page.write_text("intro\n<!-- measured:start -->\nold\n<!-- measured:end -->\nafter\n")
    monkeypatch.setattr(make_results, "RESULTS", results_dir)
    monkeypatch.setattr(make_results, "DOCS", docs)
    monkeypatch.setattr(make_results, "MEASURED", {"set5_set14": "Set5 + Set14"})

    make_results.relayout()

    table = (results_dir / "set5_set14.md").read_text()
    assert "| paper grey (COCO) | paper colour (COCO) |" in table
    assert (
        "| conv4_1 | expand-3bit/conv4_1 | 26.00 / 0.800 | 26.00 / 0.800 "
        "| 29.54 / 0.82 | 25.74 / 0.84 |" in table
    )
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("<!-- measured:end -->\nafter\n")
    assert "old" not in text and "## Set5 + Set14 (4 images), grey and colour" in text
    assert "### Set5 + Set14: Table II: 3-bit expansion by loss layer" in text
    # the CSV was rewritten with the paper's numbers of each row's tone
    written = (results_dir / "set5_set14.csv").read_text()
    assert "29.54" in written and "25.74" in written
    page.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no <!-- measured:start -->"):
        make_results.relayout()
