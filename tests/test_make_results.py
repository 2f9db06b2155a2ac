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
