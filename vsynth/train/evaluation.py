"""The one evaluation loop: predict a batch, feed the evaluator, compute (as mmengine's ``ValLoop``).

Every task scores a split the same way, during training (validation, the final test) and for
``mode=eval``: the framework batches the task's evaluation dataset in a fixed order (``eval.batch``,
``eval.workers``, optionally the first ``eval.max_images``), calls the task's prediction step under
``torch.no_grad`` and hands each batch, with the dataset indices of its images, to the task's
evaluator. A task therefore gives three things (:class:`vsynth.task.Task`): ``eval_dataset``,
``predict_step`` and ``evaluator``. Under DDP rank 0 scores the whole split alone (the evaluators are
told not to gather) and the others wait for its numbers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from vsynth.errors import ConfigError
from vsynth.eval.distributed import local_only
from vsynth.task import SplitEvaluator
from vsynth.train.distributed import barrier, broadcast_object

log = logging.getLogger("vsynth.eval")


class _Indexed(Dataset):
    """Items come with their dataset index, so the evaluator knows which image each prediction is for."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        return i, self.dataset[i]


class _IndexedCollate:
    def __init__(self, collate) -> None:
        self.collate = collate

    def __call__(self, items: list[tuple[int, Any]]) -> tuple[list[int], Any]:
        return [i for i, _ in items], self.collate([x for _, x in items])


def eval_loader(task, split: str, dataset: Dataset | None = None) -> DataLoader:
    """The split's images (or ``dataset``'s) in a fixed order, batched by ``eval.batch`` with ``eval.workers``
    workers."""
    ev = task.cfg.eval
    dataset = task.eval_dataset(split) if dataset is None else dataset
    limit = ev.get("max_images")
    if limit is not None:
        if int(limit) < 1:
            raise ConfigError(f"eval.max_images must be >= 1 or null, got {limit}")
        dataset = Subset(dataset, range(min(int(limit), len(dataset))))
    batch, workers = int(ev.batch), int(ev.workers)
    if batch < 1 or workers < 0:
        raise ConfigError(f"eval.batch must be >= 1 and eval.workers >= 0, got {batch} and {workers}")
    return DataLoader(_Indexed(dataset), batch_size=batch, shuffle=False, num_workers=workers,
                      collate_fn=_IndexedCollate(task.eval_collate))


def evaluate(task, model: torch.nn.Module, split: str, outputs: Path | None = None, *,
             dataset: Dataset | None = None, evaluator: SplitEvaluator | None = None) -> dict[str, Any]:
    """Score ``model`` on ``split``; keys without the split prefix. ``outputs``: also write the evaluator's
    per-image files (predictions and ground truth in standard formats) into that folder.

    ``dataset`` and ``evaluator`` (both or neither) score other images than a split's own through the
    same loop and prediction step, e.g. the generated images of ``mode=consistency``; ``split`` then
    only names them.
    """
    if (dataset is None) != (evaluator is None):
        raise ValueError("evaluate(): pass both dataset and evaluator, or neither")
    evaluator = task.evaluator(split) if evaluator is None else evaluator
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), local_only():
            for indices, batch in eval_loader(task, split, dataset):
                evaluator.process(indices, batch, task.predict_step(model, batch))
            metrics = evaluator.compute()
            if outputs is not None:
                for path in evaluator.write(Path(outputs), split):
                    log.info("%s: wrote %s", split, path)
    finally:
        model.train(was_training)
    return metrics


def evaluate_on_rank0(task, model: torch.nn.Module, split: str, is_main: bool,
                      outputs: Path | None = None) -> dict[str, Any]:
    """:func:`evaluate` on rank 0, its ``split/``-prefixed numbers on every rank."""
    metrics: dict[str, Any] = {}
    if is_main:
        metrics = {f"{split}/{k}": v for k, v in evaluate(task, model, split, outputs).items()}
    barrier()
    return broadcast_object(metrics)


#: config groups: an override of one of these means "compose this config", not "edit the checkpoint's"
GROUPS = ("task", "data", "model", "trainer", "arm", "experiment")
#: keys that describe this machine and this command, not the run that made the checkpoint
LOCAL_KEYS = ("paths", "device", "trust_checkpoint", "mode", "ckpt", "resume", "name")


def eval_config(cfg, overrides: list[str]):
    """The config ``mode=eval`` (and ``mode=consistency``) scores with: the checkpoint's own run config, edited
    by the command line.

    A vsynth checkpoint stores the composed config of the run that wrote it (task, model, data, image
    size, evaluation settings), so ``python -m vsynth mode=eval ckpt=PATH`` needs nothing else, and
    ``ckpt=PATH data.<keys>=...`` scores other data with everything else as trained. Overrides of a
    config group (``task=``, ``data=``, ``model=``...) that differ from the checkpoint's mean "use the
    composed config" (e.g. a backend's own checkpoint, or a deliberate change); the checkpoint's meta is
    still checked against it. Returns ``(config, the checkpoint's Weights or None, a line for run.log)``.
    """
    from omegaconf import OmegaConf, open_dict
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from vsynth.train.checkpoint import FORMAT, read_checkpoint, weights_of

    _need_ckpt(cfg)
    path = Path(str(cfg.ckpt)).expanduser()
    try:
        obj = read_checkpoint(path, "ckpt")  # plain data only: a vsynth checkpoint needs no allow-list
    except Exception:  # noqa: BLE001  (a backend's own file: the task reads it with its allow-list)
        return cfg, None, None
    if not (isinstance(obj, dict) and obj.get("format") == FORMAT and obj.get("config")):
        return cfg, None, None
    weights = weights_of(obj, path, "ckpt")
    parsed = OverridesParser.create().parse_overrides([o for o in overrides if not o.lstrip("+~").startswith("hydra")])
    stored = OmegaConf.create(obj["config"])
    groups = {o.key_or_group: o.value() for o in parsed if o.key_or_group in GROUPS}
    same = {g for g, v in groups.items() if OmegaConf.is_dict(stored.get(g)) and stored[g].get("name") == v}
    if set(groups) - same:
        return cfg, weights, (f"mode={cfg.mode}: {path} was written by a {obj.get('task')} run; the command line chooses "
                              f"{', '.join(f'{g}={v}' for g, v in groups.items())}, so the composed config is used")
    applied = []  # the run's keys the command line edits (not the groups it repeats, not this machine's keys)
    with open_dict(stored):
        for key in LOCAL_KEYS:
            if key in cfg:
                stored[key] = cfg[key]
        for o in parsed:
            if o.key_or_group in GROUPS or o.key_or_group in LOCAL_KEYS:
                continue
            applied.append(o.input_line)
            if o.is_delete():
                OmegaConf.update(stored, o.key_or_group, None, merge=False)
            else:
                OmegaConf.update(stored, o.key_or_group, o.value(), merge=False)
    edits = f"edited by the command line: {' '.join(applied)}" if applied else "no key edited by the command line"
    return stored, weights, (f"mode={cfg.mode}: scoring with the config of the {obj.get('task')} run that wrote {path} "
                             f"(its task, model, data and image size; {edits})")


def _need_ckpt(cfg) -> None:
    if not cfg.get("ckpt"):
        what = ("a segmentation model trained on real data only, e.g. an arm=base run's checkpoints/best.pt"
                if cfg.mode == "consistency" else "a vsynth checkpoint or the backend's own")
        raise ConfigError(f"mode={cfg.mode} needs ckpt=PATH ({what})")


def _read_ckpt(cfg, task) -> Path:
    """``ckpt``'s path, its weights read first: a bad or unsafe file fails before any data is read."""
    _need_ckpt(cfg)
    task.read_weights(cfg.ckpt, "ckpt")
    return Path(str(cfg.ckpt)).expanduser()


def score_checkpoint(cfg, task, run) -> dict[str, Any]:
    """``mode=eval``: score ``ckpt`` on ``eval.split`` and record it like any other run."""
    path = _read_ckpt(cfg, task)
    split = str(cfg.eval.split)
    if split not in task.eval_splits():
        raise ConfigError(f"eval.split={split}: this task has splits {list(task.eval_splits())}")
    model = task.load_for_eval(path).to(task.device).eval()
    metrics = evaluate_on_rank0(task, model, split, run.is_main, outputs=run.dir if run.is_main else None)
    metrics["eval/ckpt"] = str(path.resolve())
    log.info("%s on %s: %s", path, split,
             ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    if run.is_main:
        task.write_prediction_samples(model, split, run.samples)
    return metrics


def score_consistency(cfg, task, run) -> tuple[dict[str, Any], dict[str, Any]]:
    """``mode=consistency``: ``ckpt`` (a model trained on real data) on the generated images against the labels
    they reuse, next to the same model on their source images (:meth:`vsynth.task.Task.consistency`).

    Writes ``consistency.json`` (:mod:`vsynth.report.consistency` names its keys) and returns the run's
    metrics (``consistency/...``) and its report.md section. Rank 0 scores; the others wait for it.
    """
    from omegaconf import OmegaConf

    from vsynth.report.consistency import consistency_metrics, consistency_section, trained_on
    from vsynth.report.sweep import refresh_sweep
    from vsynth.task import Task

    if type(task).consistency is Task.consistency:
        task.consistency(None)  # raises: this task has no semantic consistency
    path = _read_ckpt(cfg, task)
    weights = task.read_weights(path, "ckpt")
    origin = trained_on(OmegaConf.create(weights.config)) if weights.kind == "vsynth" and weights.config else None
    if origin is None:
        log.warning("%s carries no record of its training data (not a vsynth checkpoint): make sure it was trained "
                    "on real data only, or consistency.json describes the model, not the generated images", path)
    elif not origin["real_only"]:
        log.warning("%s was trained on %s, not on real data only: its score on generated images is not the "
                    "semantic consistency of the generated images", path, origin["description"])
    model = task.load_for_eval(path).to(task.device).eval()
    doc: dict[str, Any] | None = None
    if run.is_main:
        doc = {"ckpt": str(path.resolve()), "model": origin, **task.consistency(model)}
        run.write_json("consistency.json", doc)
        log.info("wrote %s", run.dir / "consistency.json")
    barrier()
    doc = broadcast_object(doc)
    if run.is_main:
        refresh_sweep(run.dir)
    return consistency_metrics(doc), {"sections": [consistency_section(doc)]}
