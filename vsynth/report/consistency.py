"""``consistency.json``: how faithful generated images are to the labels they reuse, in run and sweep reports.

``mode=consistency`` (:func:`vsynth.train.evaluation.score_consistency`, computed by the task, e.g.
:mod:`tasks.segmentation.consistency`) writes one document per run. Its stable keys:

* ``ckpt``; ``model``: what the model was trained on (``arm``, ``sources``, ``ratio``, ``real_only``,
  ``description``; null for a checkpoint that does not record it); ``manifest``, ``classes``,
  ``ignore_index``, ``images`` (generated), ``source_images``, ``policy``, ``bootstrap``;
* ``all``, ``by_condition.<condition>``, ``by_generator.<generator>`` and ``groups.<condition>/<generator>``,
  each: ``images``, ``source_images``, ``miou_generated``, ``miou_source``, ``drop`` (source -
  generated), ``drop_low`` / ``drop_high`` (bootstrap interval), ``retained`` (generated / source),
  ``aacc_generated``, ``aacc_source``, ``iou_generated`` / ``iou_source`` / ``iou_drop`` (per class),
  ``resized``, ``aspect_changed`` and ``rgb`` (``generated`` / ``source``: ``mean``, ``std``,
  ``std_per_image``; ``mean_diff``, ``std_ratio``, ``mean_abs_diff``, ``sampled``).

Scores are fractions in [0, 1]; null where undefined (a class in no label and no prediction). This
module reads the document only: the run's metrics (``consistency/...``), its report.md section, and
the sweep report's section (every ``consistency.json`` in a job folder or a folder inside one, or a
note how to produce them from the sweep's real-only job).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger("vsynth.report")

TITLE = "## Semantic consistency of the generated images"
METRIC_KEYS = ("miou_generated", "miou_source", "drop", "drop_low", "drop_high", "retained", "images",
               "source_images")


def trained_on(cfg) -> dict[str, Any]:
    """What a run trained on, from its config: the arm's sources and ``data.ratio``; ``real_only`` when no
    batch can hold anything but real images (only ``real``, or a ratio that rounds to all-real batches)."""
    from vsynth.data.mixer import REAL, real_count

    arm = cfg.get("arm") or {}
    sources = [str(s) for s in (arm.get("sources") or {})]
    data = cfg.get("data") or {}
    ratio = data.get("ratio")
    others = [s for s in sources if s != REAL]
    if not others:
        real_only = REAL in sources
    else:
        batch = int((cfg.get("trainer") or {}).get("batch_size") or 0)
        real_only = ratio is not None and batch > 0 and real_count(float(ratio), batch) == batch
    what = f"arm {arm.get('name')} (sources {', '.join(sources) or 'none'}"
    what += f"; data.ratio={ratio})" if others and ratio is not None else ")"
    return {"arm": None if arm.get("name") is None else str(arm.get("name")), "sources": sources,
            "ratio": None if ratio is None or not others else float(ratio), "real_only": bool(real_only),
            "description": what}


def consistency_metrics(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The run's metrics.json: the ``all`` group's numbers as ``consistency/<key>``, and the checkpoint."""
    a = doc["all"]
    out: dict[str, Any] = {f"consistency/{k}": a[k] for k in METRIC_KEYS if a.get(k) is not None}
    out["consistency/ckpt"] = doc.get("ckpt")
    return out


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _pp(e: Mapping[str, Any]) -> str:
    if e.get("drop") is None:
        return "n/a"
    text = f"{100 * e['drop']:+.1f} pp"
    if e.get("drop_low") is not None and e.get("drop_high") is not None:
        text += f" [{100 * e['drop_low']:+.1f}, {100 * e['drop_high']:+.1f}]"
    return text


def _rgb(e: Mapping[str, Any]) -> str:
    rgb = e.get("rgb")
    if not rgb:
        return ""
    g, s = (", ".join(f"{v:.0f}" for v in rgb[k]["mean"]) for k in ("generated", "source"))
    return f"({g}) / ({s}) | {rgb['mean_abs_diff']:.1f}"


def _rows(doc: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The groups worth a row: all, each condition, each generator when there are several, and each
    (condition, generator) when both vary."""
    rows = [("all", doc["all"])]
    conds, gens = doc.get("by_condition") or {}, doc.get("by_generator") or {}
    rows += [(f"condition {k}", e) for k, e in conds.items()]
    if len(gens) > 1:
        rows += [(f"generator {k}", e) for k, e in gens.items()]
        if len(conds) > 1:
            rows += [(k, e) for k, e in (doc.get("groups") or {}).items()]
    return rows


def model_line(doc: Mapping[str, Any]) -> str:
    m = doc.get("model")
    ckpt = f"`{doc.get('ckpt')}`"
    if m is None:
        return (f"Model {ckpt}: its training data is not recorded (not a vsynth checkpoint); the statistic assumes a "
                "model trained on real data only.")
    if m.get("real_only"):
        return f"Model {ckpt}, trained on real data only: {m.get('description')}."
    return (f"**Model {ckpt} was not trained on real data only** ({m.get('description')}): it has seen generated "
            "images, so these numbers describe the model, not how faithful the generated images are.")


def consistency_section(doc: Mapping[str, Any]) -> list[str]:
    """report.md lines for one ``consistency.json``."""
    a = doc["all"]
    boot = doc.get("bootstrap") or {}
    level = boot.get("level")
    interval = (f"{100 * level:.0f} % interval: paired bootstrap over the generated images, each with its source "
                f"({boot.get('samples')} resamples)" if boot.get("samples") else "no interval (bootstrap samples 0)")
    lines = [TITLE, "", model_line(doc), "",
             f"{doc['images']} generated images of {doc['source_images']} source images (`{doc.get('manifest')}`). "
             "Each generated image is scored against the label it reuses; the same model on its source image, with "
             f"the same label, is the reference. drop = mIoU(source) - mIoU(generated); {interval}. Compare "
             "generated with source, not with 100 %: a weak model scores low on the sources too.", "",
             "| group | images | mIoU source | mIoU generated | drop | RGB mean generated / source | "
             "mean abs. diff (0..255) |", "|---|---|---|---|---|---|---|"]
    for name, e in _rows(doc):
        rgb = _rgb(e) or " | "
        lines.append(f"| {name} | {e['images']} | {_pct(e['miou_source'])} | {_pct(e['miou_generated'])} | "
                     f"{_pp(e)} | {rgb} |")
    lines += ["", "Per class (all generated images):", "", "| class | IoU source | IoU generated | drop |",
              "|---|---|---|---|"]
    for c in doc.get("classes") or []:
        d = a["iou_drop"].get(c)
        lines.append(f"| {c} | {_pct(a['iou_source'].get(c))} | {_pct(a['iou_generated'].get(c))} | "
                     f"{'n/a' if d is None else f'{100 * d:+.1f} pp'} |")
    if a.get("resized"):
        lines += ["", f"{a['resized']} generated image(s) differ in size from their label: their predictions were "
                      "resized to the label (nearest neighbour)."]
    if a.get("aspect_changed"):
        lines += ["", f"**{a['aspect_changed']} generated image(s) have another aspect ratio than their label** "
                      "(cropped or padded?): they cannot line up with it and score low for that reason alone."]
    return lines


# ---- sweeps ----------------------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def results(jobs: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """(run folder, document) of every ``consistency.json`` in a job folder or a folder directly inside one."""
    out = []
    for job in jobs:
        for path in [job / "consistency.json", *sorted(job.glob("*/consistency.json"))]:
            doc = _read(path) if path.is_file() else None
            if isinstance(doc, dict) and isinstance(doc.get("all"), dict):
                out.append((path.parent, doc))
    return out


#: overrides that say how a consistency run was started, not what it scored
_NOT_SETTINGS = ("ckpt", "mode", "trainer.threads", "device")


def _label(run: Path, sweep_dir: Path, swept: list[str]) -> str:
    """A result's row label: its job's swept settings (or the job's name), then for a run inside the job its
    folder and the settings it added (e.g. ``data.ratio=1.0 / consistency (data.demo.effects.generated_warp=4)``)."""
    from vsynth.report.jobs import job_overrides

    job = sweep_dir / run.relative_to(sweep_dir).parts[0]
    own = job_overrides(job)
    label = ", ".join(f"{k}={own[k]}" for k in swept if k in own) or job.name
    if run != job:
        added = [f"{k}={v}" for k, v in job_overrides(run).items() if k not in own and k not in _NOT_SETTINGS]
        label += f" / {run.name}" + (f" ({', '.join(added)})" if added else "")
    return label


def _real_only_job(jobs: list[Path]) -> tuple[Path, Path, str] | None:
    """A finished job of the sweep trained on real data only, its checkpoint and what it trained on."""
    from omegaconf import OmegaConf

    for job in jobs:
        status = _read(job / "status.json") or {}
        ckpt = next((p for p in (job / "checkpoints" / "best.pt", job / "checkpoints" / "last.pt") if p.is_file()), None)
        cfg_file = job / ".hydra" / "config.yaml"
        if status.get("state") != "done" or status.get("mode") != "train" or ckpt is None or not cfg_file.is_file():
            continue
        origin = trained_on(OmegaConf.load(cfg_file))
        if origin["real_only"]:
            return job, ckpt, origin["description"]
    return None


def sweep_section(sweep_dir: Path, jobs: list[Path], swept: list[str]) -> list[str]:
    """The sweep report's consistency section: a row per result and group (results labelled by the ``swept``
    keys); or, for a segmentation sweep without results, how to produce them. Nothing for other sweeps."""
    found = results(jobs)
    if found:
        lines = [TITLE, "", "From the `consistency.json` of each run below (`python -m vsynth mode=consistency "
                 "ckpt=...`). drop = mIoU(source) - mIoU(generated), same model, same labels, with its bootstrap "
                 "interval over generated images.", "",
                 "| run | model real-only | group | images | mIoU source | mIoU generated | drop | "
                 "RGB mean generated / source | mean abs. diff |", "|---|---|---|---|---|---|---|---|---|"]
        for run, doc in found:
            model = doc.get("model") or {}
            real = {True: "yes", False: "**no**"}.get(model.get("real_only"), "unknown")
            for name, e in _rows(doc):
                rgb = _rgb(e) or " | "
                lines.append(f"| {_label(run, sweep_dir, swept)} | {real} | {name} | {e['images']} | "
                             f"{_pct(e['miou_source'])} | {_pct(e['miou_generated'])} | {_pp(e)} | {rgb} |")
        return [*lines, ""]
    tasks = {(_read(job / "status.json") or {}).get("task") for job in jobs}
    if "segmentation" not in tasks:
        return []
    lines = [TITLE, ""]
    base = _real_only_job(jobs)
    if base is None:
        lines += ["No run of this sweep has consistency results, and none trained on real data only. Train one "
                  "(e.g. `arm=base`, or `data.ratio=1.0`), then score the generated images with it: "
                  "`python -m vsynth mode=consistency ckpt=RUN/checkpoints/best.pt`."]
    else:
        job, ckpt, what = base
        lines += [f"No run of this sweep has consistency results yet. Its real-only job `{job.name}` ({what}) "
                  "gives them for the generated images of this sweep's data:", "",
                  f"    python -m vsynth mode=consistency ckpt={ckpt.resolve()} "
                  f"hydra.run.dir={(job / 'consistency').resolve()}", "",
                  "This report shows them when it is next written (the command rewrites it)."]
    return [*lines, ""]
