"""The eval command's core: which rows go where, scores, markdown and CSV layout."""

from __future__ import annotations

import csv

import imageio.v3 as iio
import numpy as np
import pytest
from skimage import data

from napari_compand import paper_tables
from napari_compand.cli import main
from napari_compand.degrade import quantize
from napari_compand.evaluation import baseline, grey_version
from napari_compand.metrics import psnr

EX3 = "expand-3bit/conv1_1"
IH = "inverse-halftone/conv1_1"


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [data.astronaut()[100:196, 150:278], data.coffee()[50:130, 200:296]]


def test_plan_lists_baselines_then_models_with_their_in_bin_variant():
    methods = paper_tables.plan(task="expand", bits=[3], models=[EX3, "expand-1bit/conv1_1"])
    assert [m.label for m in methods] == [
        "Eq. 2 as-is",
        "mid-bin",
        EX3,
        f"{EX3} in bin",
    ]
    plain, in_bin = methods[2], methods[3]
    assert plain.tables == ("I", "II") and methods[1].tables == ("I", "II")
    assert methods[0].tables == ("I",)
    assert plain.paper == (30.79, 0.90) and in_bin.paper is None
    assert in_bin.consistent and not plain.consistent
    ensembled = paper_tables.plan(task="expand", bits=[3], models=[EX3], self_ensemble=True)[-1]
    assert ensembled.label == f"{EX3} x8 in bin" and ensembled.consistent
    pair = paper_tables.plan(task="expand", bits=[3], models=[EX3], self_ensemble=2)[-1]
    assert pair.label == f"{EX3} x2 in bin"
    with pytest.raises(ValueError, match="1, 2 or 8 views"):
        paper_tables.plan(task="expand", bits=[3], models=[EX3], self_ensemble=4)
    shifted = paper_tables.plan(task="inverse-halftone", models=[IH], self_ensemble=2)[-1]
    assert shifted.label == f"{IH} x2" and not shifted.consistent


def test_plan_places_layer_models_and_halftone_baselines():
    methods = paper_tables.plan(
        task="inverse-halftone", models=[IH, "inverse-halftone/conv5_1", EX3]
    )
    labels = [m.label for m in methods]
    assert labels == ["halftone as-is", "Gaussian blur (sigma 1.2)", IH, "inverse-halftone/conv5_1"]
    assert all(m.tables == ("III",) for m in methods)
    assert methods[2].paper == (31.43, 0.91) and methods[3].paper is None
    layer = paper_tables.plan(task="expand", bits=[3], models=["expand-3bit/conv5_1"])[-2]
    assert layer.tables == ("II",)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "denoise"}, "unknown task"),
        ({"bits": [0]}, "bits must be between 1 and 7"),
        ({"task": "expand", "bits": [2], "models": [EX3]}, "none of the given models matches"),
    ],
)
def test_plan_errors_are_clear(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paper_tables.plan(**kwargs)


def test_measure_scores_match_direct_computation(photos):
    methods = paper_tables.plan(task="expand", bits=[3], models=[EX3])
    done = []
    results = paper_tables.measure(photos, methods, progress=lambda d, t: done.append((d, t)))
    assert done[-1] == (2 * 4 * 2, 16) and len(done) == 16
    assert len(results) == len(methods) * 2
    by = {(r.method.label, r.tone): r.scores for r in results}
    # mid-bin on colour, computed by hand
    midbin = baseline("midbin", methods[1].degradation)
    expected = np.mean([psnr(p, midbin(quantize(p, 3)), rgb=True) for p in photos])
    assert by[("mid-bin", "colour")].psnr == pytest.approx(expected)
    grey = [grey_version(p) for p in photos]
    expected_grey = np.mean([psnr(g, midbin(quantize(g, 3))) for g in grey])
    assert by[("mid-bin", "grey")].psnr == pytest.approx(expected_grey)
    # the model beats mid-bin; clamping into the bin never lowers PSNR
    for tone in ("grey", "colour"):
        assert by[(EX3, tone)].psnr > by[("mid-bin", tone)].psnr
        assert by[(f"{EX3} in bin", tone)].psnr >= by[(EX3, tone)].psnr
        assert by[("Eq. 2 as-is", tone)].psnr < by[("mid-bin", tone)].psnr


def test_measure_rejects_bad_tones_and_empty_data(photos):
    methods = paper_tables.plan(task="inverse-halftone", models=[IH])
    with pytest.raises(ValueError, match="tones must be among"):
        paper_tables.measure(photos, methods, tones=["sepia"])
    with pytest.raises(ValueError, match="no images"):
        paper_tables.measure([], methods)


def test_markdown_and_csv_layout(photos, tmp_path):
    methods = paper_tables.plan(bits=[3], models=[EX3, "expand-3bit/conv5_1", IH])
    results = paper_tables.measure(photos[:1], methods, tones=["colour"])
    text = paper_tables.markdown(results, data="two crops")
    for title in ("Table I:", "Table II:", "Table III:"):
        assert title in text
    assert "| colour PSNR / SSIM | paper colour (COCO) |" in text
    assert "grey PSNR" not in text
    assert f"| 3 | {EX3} | " in text and "| 30.79 / 0.90 |" in text
    assert "| conv5_1 | expand-3bit/conv5_1 | " in text
    assert f"| conv1_1 | {IH} | " in text and "| 31.43 / 0.91 |" in text
    assert "Mean over 1 images on two crops" in text
    written = paper_tables.write_csv(results, tmp_path / "t.csv")
    rows = list(csv.DictReader(written.read_text().splitlines()))
    assert len(rows) == len(methods)
    first = next(r for r in rows if r["method"] == EX3)
    assert first["tables"] == "I+II" and first["paper_colour_psnr_db"] == "30.79"
    assert float(first["psnr_db"]) > 20 and first["tone"] == "colour"
    # the CSV holds everything the tables need
    assert paper_tables.markdown(paper_tables.read_csv(written), data="two crops") == text


def test_eval_command_prints_tables_and_writes_csv(photos, tmp_path, capsys):
    folder = tmp_path / "clean"
    folder.mkdir()
    for i, photo in enumerate(photos):
        iio.imwrite(folder / f"p{i}.png", photo)
    iio.imwrite(folder / "grey.png", data.camera()[:64, :96])  # grey files are scored as RGB too
    args = ["eval", "--data", str(folder), "--task", "inverse-halftone", "--models", IH]
    args += ["--csv", str(tmp_path / "r.csv"), "--markdown", str(tmp_path / "r.md")]
    args += ["--per-image", str(tmp_path / "each.csv")]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "Table III" in out.out and "Table I:" not in out.out
    assert "Mean over 3 images" in out.out
    assert "eval" in out.err  # the progress bar
    assert (tmp_path / "r.md").read_text() in out.out
    rows = list(csv.DictReader((tmp_path / "r.csv").read_text().splitlines()))
    assert {r["tone"] for r in rows} == {"grey", "colour"} and len(rows) == 3 * 2
    scores = {(r["method"], r["tone"]): float(r["psnr_db"]) for r in rows}
    assert scores[(IH, "colour")] > scores[("Gaussian blur (sigma 1.2)", "colour")]
    # every image's scores: 3 images x 3 methods x 2 tones, their means the table's
    each = list(csv.DictReader((tmp_path / "each.csv").read_text().splitlines()))
    assert len(each) == 3 * len(rows)
    assert {r["image"] for r in each} == {str(folder / n) for n in ("grey.png", "p0.png", "p1.png")}
    for (method, tone), mean in scores.items():
        mine = [float(r["psnr_db"]) for r in each if (r["method"], r["tone"]) == (method, tone)]
        assert len(mine) == 3 and np.mean(mine) == pytest.approx(mean)
        assert len(set(mine)) == 3  # three images, three different scores


def test_eval_command_errors(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    iio.imwrite(tmp_path / "a.png", data.astronaut()[:64, :64])
    args = ["eval", "--data", str(tmp_path), "--task", "expand", "--bits", "2", "--models", EX3]
    assert main(args) == 2
    assert "none of the given models matches" in capsys.readouterr().err
    assert main(["eval", "--data", str(tmp_path), "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
    same = str(tmp_path / "out.csv")
    assert main(["eval", "--data", str(tmp_path), "--csv", same, "--per-image", same]) == 2
    assert "--csv, --per-image name the same file" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_plan_leaves_out_models_that_read_a_threshold_map(tmp_path):
    """Table III is Floyd–Steinberg, which a Bayer-only model cannot restore."""
    from napari_compand.checkpoints import save_checkpoint
    from napari_compand.models import ModelConfig, build_model

    config = ModelConfig(arch="resunet", widths=(4, 8), blocks=(1, 1), threshold_map=True)
    path = save_checkpoint(
        tmp_path / "dots.safetensors",
        build_model(config),
        {"task": "inverse-halftone", "architecture": config.to_dict()},
    )
    methods = paper_tables.plan(task="inverse-halftone", models=[IH, str(path)])
    assert [m.label for m in methods if m.loss_layer] == [IH]
    with pytest.raises(ValueError, match="Bayer-only models cannot restore"):
        paper_tables.plan(task="inverse-halftone", models=[str(path)])


def test_table_one_quotes_the_paper_where_no_measured_row_does(photos):
    # no zoo model carries the paper's 4-bit figure (its conv1_1 U-Net was retired)
    methods = paper_tables.plan(bits=[3, 4], models=[EX3, "expand-4bit/resunet"])
    text = paper_tables.markdown(paper_tables.measure(photos[:1], methods, tones=["colour"]))
    assert "| 4 | the paper's U-Net, conv1_1 (not measured) | – | 34.52 |" in text
    assert "| 3 | the paper's U-Net" not in text  # EX3's own row quotes 30.79
