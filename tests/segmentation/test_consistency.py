"""Semantic consistency with known answers: an oracle (predictions = the true labels of what an image shows)
isolates the statistic from any model, so its values follow from the geometry alone."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from tasks.segmentation.consistency import Pairs, PerImageEvaluator, Settings, consistency_doc
from tasks.segmentation.data import Classes, SegItem
from vsynth.data.demo.effects import generated_warp_matrix
from vsynth.data.demo.world import render_sample
from vsynth.errors import ConfigError
from vsynth.report.consistency import consistency_metrics, consistency_section, sweep_section, trained_on

TWO = Classes(["left", "right"], [(255, 0, 0), (0, 0, 255)], 255)
SETTINGS = Settings(samples=200, seed=0, level=0.95, pictures=0)


def halves(width: int, height: int, edge: int) -> np.ndarray:
    """Class 0 left of column ``edge``, class 1 from it on."""
    lab = np.ones((height, width), np.uint8)
    lab[:, :edge] = 0
    return lab


def write_pair(folder: Path, name: str, label: np.ndarray, image_size: tuple[int, int] | None = None,
               condition: str = "fog", generator: str = "g") -> SegItem:
    """A source image + label and a generated image (of ``image_size`` (w, h), default the label's) from it."""
    folder.mkdir(parents=True, exist_ok=True)
    h, w = label.shape
    src, lab, gen = folder / f"{name}.jpg", folder / f"{name}.png", folder / f"{name}_gen.jpg"
    cv2.imwrite(str(src), np.full((h, w, 3), 60, np.uint8))
    cv2.imwrite(str(lab), label)
    gw, gh = image_size or (w, h)
    cv2.imwrite(str(gen), np.full((gh, gw, 3), 180, np.uint8))
    return SegItem(gen, lab, src, condition, generator, where=name)


def score(items: list[SegItem], gen_preds: list[np.ndarray], src_preds: dict[int, np.ndarray] | None = None,
          classes: Classes = TWO, with_rgb: bool = False) -> dict:
    """The consistency document of oracle predictions (sources: their own labels unless given)."""
    from vsynth.data.formats.seg_folders import read_mask

    pairs = Pairs.of(items)
    gen, src = PerImageEvaluator(pairs.generated, classes), PerImageEvaluator(pairs.sources, classes)
    gen.process(range(len(items)), None, gen_preds)
    src_preds = src_preds or {}
    src.process(range(len(pairs.sources)), None,
                [src_preds.get(j, read_mask(s.label).astype(np.int64)) for j, s in enumerate(pairs.sources)])
    gen.compute(), src.compute()
    return consistency_doc(pairs, gen, src, classes, SETTINGS, with_rgb=with_rgb)


def test_a_shift_of_d_pixels_gives_the_known_iou(tmp_path: Path) -> None:
    """Label: 20 columns of class 0, then 20 of class 1. A generated image whose content moved 4 px right
    shows class 0 on 24 columns: IoU 20/24 and 16/20; the sources score 1; a null pair drops exactly 0."""
    label = halves(40, 10, 20)
    moved = write_pair(tmp_path, "a", label, condition="fog")
    same = write_pair(tmp_path, "b", label, condition="clear")
    doc = score([moved, same], [halves(40, 10, 24).astype(np.int64), label.astype(np.int64)])
    fog, clear = doc["by_condition"]["fog"], doc["by_condition"]["clear"]
    assert fog["iou_generated"] == {"left": pytest.approx(20 / 24, abs=1e-6), "right": pytest.approx(16 / 20, abs=1e-6)}
    assert fog["miou_generated"] == pytest.approx((20 / 24 + 16 / 20) / 2, abs=1e-6)
    assert fog["miou_source"] == 1.0 and fog["drop"] == pytest.approx(1 - fog["miou_generated"], abs=1e-6)
    assert fog["iou_drop"]["right"] == pytest.approx(0.2, abs=1e-6)
    assert clear["drop"] == 0.0 and clear["drop_low"] == 0.0 and clear["drop_high"] == 0.0
    assert clear["miou_generated"] == clear["miou_source"] == 1.0
    # all = the two images' pixel counts summed (not the mean of the groups' mIoUs)
    assert doc["all"]["iou_generated"]["left"] == pytest.approx(40 / 44, abs=1e-6)
    assert doc["all"]["images"] == 2 and doc["all"]["source_images"] == 2
    assert set(doc["groups"]) == {"fog/g", "clear/g"} and doc["groups"]["fog/g"]["condition"] == "fog"
    assert doc["by_generator"]["g"]["generator"] == "g" and doc["by_generator"]["g"]["images"] == 2


def test_ignored_label_pixels_count_on_neither_side(tmp_path: Path) -> None:
    """Whatever is predicted under the label's ignore band changes nothing."""
    label = halves(40, 10, 20)
    label[:, 16:24] = 255
    item = write_pair(tmp_path, "a", label)
    truth = halves(40, 10, 20).astype(np.int64)
    wrong_in_band = truth.copy()
    wrong_in_band[:, 16:24] = 1 - wrong_in_band[:, 16:24]
    a = score([item], [truth], {0: wrong_in_band})["all"]
    b = score([item], [wrong_in_band], {0: truth})["all"]
    assert a["miou_source"] == a["miou_generated"] == b["miou_generated"] == 1.0 and a["drop"] == 0.0


def test_a_generated_image_of_another_size_is_scored_at_the_label_size(tmp_path: Path) -> None:
    """The prediction on a half-size image is resized to the label (nearest): an exact half-size oracle
    scores 1; an image of another aspect ratio is counted as such."""
    label = halves(40, 10, 20)
    half = write_pair(tmp_path, "a", label, image_size=(20, 5))
    squeezed = write_pair(tmp_path, "b", label, image_size=(20, 10), condition="snowy")
    doc = score([half, squeezed], [halves(20, 5, 10).astype(np.int64), halves(20, 10, 10).astype(np.int64)])
    assert doc["all"]["miou_generated"] == 1.0 and doc["all"]["resized"] == 2
    assert doc["by_condition"]["fog"]["aspect_changed"] == 0 and doc["by_condition"]["snowy"]["aspect_changed"] == 1


def test_a_source_with_several_generated_images_counts_once_per_image(tmp_path: Path) -> None:
    """Two generated images of source a and one of source b: the source side weighs a twice (paired)."""
    a_label, b_label = halves(40, 10, 20), halves(40, 10, 10)
    a1 = write_pair(tmp_path, "a", a_label)
    a2 = SegItem(a1.image, a1.label, a1.origin, "fog", "g", where="a2")
    b = write_pair(tmp_path, "b", b_label)
    # the model is wrong on source b only (predicts a's label there)
    doc = score([a1, a2, b], [a_label.astype(np.int64)] * 2 + [b_label.astype(np.int64)],
                src_preds={1: a_label.astype(np.int64)})
    assert doc["source_images"] == 2 and doc["all"]["source_images"] == 2
    # source pixel counts: a twice (all right), b once (10 columns of class 1 called class 0)
    left = (2 * 200 + 100) / (2 * 200 + 200)
    right = (2 * 200 + 200) / (2 * 200 + 300)
    assert doc["all"]["miou_source"] == pytest.approx((left + right) / 2, abs=1e-6)
    assert doc["all"]["miou_generated"] == 1.0 and doc["all"]["drop"] < 0


def demo_oracle(strength: float, n: int = 6, size: tuple[int, int] = (160, 120)) -> list[tuple[np.ndarray, np.ndarray]]:
    """(source label, what the generated image shows) for demo labels under the demo's warp at ``strength``
    (labels without ignore bands: the oracle must name a class for every pixel it shows)."""
    out = []
    index = -1
    while len(out) < n:
        index += 1
        label = render_sample("segmentation", "real", 0, "train", index, size).semantic
        if (label == 255).any():
            continue
        m = generated_warp_matrix(np.random.default_rng(index), size, strength)
        out.append((label, cv2.warpAffine(label, m, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)))
    return out


def test_oracle_consistency_falls_as_the_demo_warp_grows(tmp_path: Path) -> None:
    """With a perfect model the style change costs nothing: at warp 0 the generated images keep their labels
    exactly (drop 0); the drop grows with the warp, and at 4 its interval excludes 0."""
    classes = Classes(["background", "road", "sidewalk", "building", "vehicle", "person"], [(0, 0, 0)] * 6, 255)
    docs = {}
    for strength in (0.0, 1.0, 4.0):
        pairs = demo_oracle(strength)
        items = [write_pair(tmp_path / f"w{strength}", f"i{i}", lab, condition="fog") for i, (lab, _) in enumerate(pairs)]
        docs[strength] = score(items, [shown.astype(np.int64) for _, shown in pairs], classes=classes)["all"]
    assert docs[0.0]["miou_generated"] == docs[0.0]["miou_source"] == 1.0 and docs[0.0]["drop"] == 0.0
    drops = [docs[s]["drop"] for s in (0.0, 1.0, 4.0)]
    assert drops[0] < drops[1] < drops[2]
    assert all(docs[s]["miou_source"] == 1.0 for s in docs)
    assert docs[4.0]["drop_low"] > 0.0 and docs[4.0]["drop_low"] <= docs[4.0]["drop"] <= docs[4.0]["drop_high"]


def test_rgb_statistics_are_the_data_stats_of_the_pairs(tmp_path: Path) -> None:
    label = halves(40, 10, 20)
    doc = score([write_pair(tmp_path, "a", label)], [label.astype(np.int64)], with_rgb=True)
    rgb = doc["all"]["rgb"]
    assert rgb["generated"]["mean"] == pytest.approx([180, 180, 180], abs=1.0)
    assert rgb["source"]["mean"] == pytest.approx([60, 60, 60], abs=1.0)
    assert rgb["mean_diff"] == pytest.approx([120, 120, 120], abs=1.5) and rgb["mean_abs_diff"] == pytest.approx(120, abs=1.5)
    assert rgb["sampled"] == 1


def test_settings_name_their_keys() -> None:
    base = {"consistency": {"bootstrap": {"samples": 10, "seed": 1, "level": 0.9}, "pictures": 2},
            "stats": {"per_source": None, "seed": 3}}
    s = Settings.from_task(OmegaConf.create(base))
    assert (s.samples, s.seed, s.level, s.pictures, s.stats_per_group, s.stats_seed) == (10, 1, 0.9, 2, None, 3)
    for bad, message in [({"bootstrap": {"samples": -1}}, "task.consistency.bootstrap.samples"),
                         ({"bootstrap": {"level": 1.5}}, "task.consistency.bootstrap.level"),
                         ({"bootstrap": {"n": 5}}, "task.consistency.bootstrap.n: unknown key"),
                         ({"pictures": "all"}, "task.consistency.pictures"),
                         ({"picture": 1}, "task.consistency.picture: unknown key")]:
        with pytest.raises(ConfigError, match=message):
            Settings.from_task(OmegaConf.create({"consistency": bad}))


def test_trained_on_tells_real_only_models() -> None:
    def cfg(sources, ratio, batch=8):
        return OmegaConf.create({"arm": {"name": "x", "sources": {s: {} for s in sources}}, "data": {"ratio": ratio},
                                 "trainer": {"batch_size": batch}})

    assert trained_on(cfg(["real"], 0.5))["real_only"] is True
    assert trained_on(cfg(["real", "generated"], 1.0))["real_only"] is True
    assert trained_on(cfg(["real", "generated"], 0.96))["real_only"] is True  # 7.68 rounds to 8 of 8
    assert trained_on(cfg(["real", "generated"], 0.9))["real_only"] is False
    assert trained_on(cfg(["real", "synthetic"], None))["real_only"] is False
    assert trained_on(cfg(["generated"], 0.0))["real_only"] is False


def _doc(tmp_path: Path) -> dict:
    label = halves(40, 10, 20)
    doc = score([write_pair(tmp_path, "a", label)], [halves(40, 10, 24).astype(np.int64)], with_rgb=True)
    return {"ckpt": "/x/best.pt", "model": {"real_only": False, "description": "arm ratio0.5 (...)"}, "manifest": "m.csv",
            **doc}


def test_run_report_section_and_metrics(tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    m = consistency_metrics(doc)
    assert m["consistency/miou_source"] == 1.0 and m["consistency/drop"] == doc["all"]["drop"]
    assert m["consistency/ckpt"] == "/x/best.pt" and m["consistency/images"] == 1
    text = "\n".join(consistency_section(doc))
    assert "## Semantic consistency of the generated images" in text
    assert "was not trained on real data only" in text  # a model that saw generated images is called out
    assert "| condition fog | 1 | 100.0 % |" in text and "| right |" in text


def test_sweep_section_collects_results_or_says_how_to_make_them(tmp_path: Path) -> None:
    import json

    root = tmp_path / "sweep"
    jobs = []
    for name, ratio in (("data.ratio=0.5", 0.5), ("data.ratio=1.0", 1.0)):
        job = root / name
        (job / ".hydra").mkdir(parents=True)
        (job / "checkpoints").mkdir()
        (job / "checkpoints" / "best.pt").write_bytes(b"")
        (job / ".hydra" / "overrides.yaml").write_text(f"- data.ratio={ratio}\n")
        OmegaConf.save(OmegaConf.create({"arm": {"name": f"ratio{ratio}", "sources": {"real": {}, "generated": {}}},
                                         "data": {"ratio": ratio}, "trainer": {"batch_size": 8}}),
                       job / ".hydra" / "config.yaml")
        (job / "status.json").write_text(json.dumps({"state": "done", "task": "segmentation", "mode": "train"}))
        jobs.append(job)
    note = "\n".join(sweep_section(root, jobs, ["data.ratio"]))
    assert "real-only job `data.ratio=1.0`" in note
    assert f"ckpt={(jobs[1] / 'checkpoints' / 'best.pt').resolve()}" in note
    assert f"hydra.run.dir={(jobs[1] / 'consistency').resolve()}" in note
    # the note's command leaves its consistency.json inside the job: the section then shows it
    run = jobs[1] / "consistency"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- mode=consistency\n- ckpt=/x\n- data.demo.effects.generated_warp=4\n")
    (run / "consistency.json").write_text(json.dumps(_doc(tmp_path)))
    table = "\n".join(sweep_section(root, jobs, ["data.ratio"]))
    assert ("| data.ratio=1.0 / consistency (data.demo.effects.generated_warp=4) | **no** | all | 1 | 100.0 % |"
            in table)
    # other tasks' sweeps get nothing
    for job in jobs:
        (job / "status.json").write_text(json.dumps({"state": "done", "task": "keypoints", "mode": "train"}))
    (run / "consistency.json").unlink()
    assert sweep_section(root, jobs, ["data.ratio"]) == []
