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
    # Tables I and II drew different COCO samples; the as-is row is the paper's input
    assert plain.paper("I", "colour") == (30.79, 0.90) and plain.paper("II", "grey") == (
        32.57,
        0.91,
    )
    assert in_bin.paper("I", "colour") is None and methods[1].paper("I", "colour") is None
    assert methods[0].paper("I", "grey") == (23.16, 0.78)
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
    assert methods[2].paper("III", "colour") == (31.43, 0.91)
    assert methods[3].paper("III", "grey") == (26.48, 0.69)  # conv5_1, Table III
    assert methods[0].paper("III", "colour") == (8.08, 0.20)  # the halftone itself
    assert methods[1].paper("III", "colour") is None
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
    assert f"| conv1_1 | {EX3} | " in text and "| 32.64 / 0.93 |" in text  # Table II's sample
    assert "| conv5_1 | expand-3bit/conv5_1 | " in text and "| 25.43 / 0.87 |" in text
    assert "| 3 | Eq. 2 as-is | " in text and "| 23.13 / 0.85 |" in text
    assert f"| conv1_1 | {IH} | " in text and "| 31.43 / 0.91 |" in text
    assert "Mean over 1 images on two crops" in text
    written = paper_tables.write_csv(results, tmp_path / "t.csv")
    rows = list(csv.DictReader(written.read_text().splitlines()))
    assert len(rows) == len(methods)
    first = next(r for r in rows if r["method"] == EX3)
    assert first["tables"] == "I+II" and first["paper_psnr_db"] == "30.79"
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
    assert "Table IV" not in out.out  # none of the paper's classic images
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
    assert "| 4 | the paper's U-Net, conv1_1 (not measured) | – | 34.52 / 0.95 |" in text
    assert "| 3 | the paper's U-Net" not in text  # EX3's own row quotes 30.79


def test_eval_sets_the_papers_classic_images_beside_table_iv_and_fig_8(photos, tmp_path, capsys):
    """Files named like the paper's classic images get their own rows, image by image."""
    folder = tmp_path / "classic"
    folder.mkdir()
    iio.imwrite(folder / "Barbara.png", photos[0])
    iio.imwrite(folder / "pepper.png", photos[1])  # Set14's spelling of Peppers
    iio.imwrite(folder / "zebra.png", data.astronaut()[:64, :64])
    args = ["eval", "--data", str(folder), "--task", "inverse-halftone", "--models", IH]
    assert main([*args, "--per-image", str(tmp_path / "each.csv")]) == 0
    out = capsys.readouterr().out
    table_iv = out.split("### Table IV")[1].split("### Fig. 8")[0]
    fig_8 = out.split("### Fig. 8")[1]
    # colour: Barbara and Peppers (Table IV), each with its measured score and the paper's
    each = list(csv.DictReader((tmp_path / "each.csv").read_text().splitlines()))
    barbara = next(
        r
        for r in each
        if r["image"].endswith("Barbara.png") and r["method"] == IH and r["tone"] == "colour"
    )
    assert f"| barbara | {IH} | {float(barbara['psnr_db']):.2f} / " in table_iv
    assert "| 31.79 / 0.92 | LLDO 28.48 / 0.85 |" in table_iv
    assert "| peppers | Gaussian blur (sigma 1.2) | " in table_iv
    assert "| 31.44 / 0.89 | LLDO 31.07 / 0.87 |" in table_iv
    assert "zebra" not in out
    # grey: Peppers only (Fig. 8 has Lenna and Peppers; WInHD and Fastiht2 compared)
    assert "| peppers | " in fig_8 and "| 33.22 / 0.87 | Fastiht2 31.46 / 0.83 |" in fig_8
    assert "barbara" not in fig_8
    # expansion alone: no inverse halftoning measured, no classic-image table
    results = paper_tables.measure(
        [photos[0]], paper_tables.plan("expand", [3], [EX3]), tones=["colour"]
    )
    assert paper_tables.classic_markdown(results, ["barbara.png"]) == ""


def test_the_papers_numbers_by_task_depth_layer_and_tone():
    from napari_compand import paper

    assert paper.reported("expand", 5, "conv1_1", "grey").psnr == 40.24
    assert paper.reported("expand", 3, "conv1_1").psnr == 30.79  # Table I by default
    assert paper.reported("expand", 3, "conv1_1", table="II").psnr == 32.64
    assert paper.reported("expand", 3, "conv4_1", "grey").psnr == 29.54  # Table II
    assert paper.reported("expand", 4, "conv4_1") is None  # the layer study is 3-bit only
    assert paper.reported("expand", 6, "conv1_1") is None
    assert paper.reported("inverse-halftone", None, "conv3_1", "grey").psnr == 27.44
    assert paper.reported("inverse-halftone", None, "none") is None
    assert paper.classic_name("Lena") == "lenna" and paper.classic_name("baboon") is None
    with pytest.raises(ValueError, match="tone must be"):
        paper.reported("expand", 3, "conv1_1", "sepia")
    with pytest.raises(ValueError, match="unknown task"):
        paper.reported("denoise", 3, "conv1_1")
    # every row of Tables I-III has both tones, and the input below the output
    for table in (paper.TABLE_I, paper.TABLE_II, paper.TABLE_III):
        keys = {key[0] for key in table}
        assert all((key, tone) in table for key in keys for tone in ("colour", "grey"))
        assert all(row.input_psnr < row.psnr for row in table.values())


def test_the_papers_row_for_a_checkpoint_only_for_its_own_models():
    from napari_compand import paper
    from napari_compand.inference import load_model

    assert paper.reported_for_model(load_model("expand-3bit/conv4_1").metadata).psnr == 25.74
    grey = paper.reported_for_model(load_model("expand-1bit/conv1_1").metadata, "grey")
    assert grey.psnr == 18.81
    # a pixel-loss ResUNet is not the paper's network: no row, though the task matches
    assert paper.reported_for_model(load_model("expand-3bit/resunet").metadata) is None
    unet_with_pixel_term = {
        "task": "expand", "bits": 3, "loss_layer": "conv1_1",
        "architecture": {"arch": "unet"}, "recipe": {"pixel_weight": 1e5},
    }  # fmt: skip
    assert paper.reported_for_model(unet_with_pixel_term) is None
