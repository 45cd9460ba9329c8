"""The model a vsynth checkpoint holds, rebuilt the way its run built it, ready to be written out.

A vsynth checkpoint stores the composed config of the run that wrote it (YAML text), the task's meta
(model, classes, keypoint shape) and the weights (raw and EMA). Exporting needs the same model the
run evaluated, so the task is built from that config exactly as ``mode=eval`` builds it (only the
evaluation data is read, for the names a checkpoint does not carry, such as keypoint names or a
palette), the weights are loaded strictly and the task's meta is checked against the data. Only
:mod:`vsynth.train.checkpoint` reads the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from vsynth.errors import CheckpointError, ConfigError

#: which weights of a checkpoint to export
WEIGHTS = ("ema", "model")


@dataclass
class RunModel:
    """A checkpoint's model rebuilt by its task, in eval mode on the CPU."""

    task: Any  # vsynth.task.Task, built from the run's config with mode=eval
    model: nn.Module
    weights: Any  # vsynth.train.checkpoint.Weights: which weights were loaded, from which file
    cfg: Any  # the run's composed config (DictConfig), with the command line's overrides applied
    step: int  # the training step the checkpoint was written at


def apply_overrides(cfg, overrides: Sequence[str]):
    """``key=value`` edits of the run's config (e.g. ``data.real.yaml=/new/place/data.yaml`` when the data
    moved); a key the run's config does not have is an error naming it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    _missing = object()
    for text in overrides:
        try:
            (o,) = OverridesParser.create().parse_overrides([text])
        except HydraException as e:
            raise ConfigError(f"{text}: not a key=value override ({str(e).splitlines()[0]})") from None
        key = o.key_or_group
        if o.is_delete() or o.is_add() or OmegaConf.select(cfg, key, default=_missing) is _missing:
            raise ConfigError(f"{key}: not a key of the run's config (export edits only existing keys)")
        OmegaConf.update(cfg, key, o.value(), merge=False)
    return cfg


def open_checkpoint(ckpt: str | Path, weights: str | None = None, overrides: Sequence[str] = (),
                    workdir: Path | None = None) -> RunModel:
    """The model in vsynth checkpoint ``ckpt``, built by its task: ``weights`` ema or model (None: what vsynth
    evaluated, the EMA weights when the run kept them, else the raw ones).

    ``overrides``: ``key=value`` edits of the stored config (:func:`apply_overrides`). ``workdir`` is the
    folder handed to the task as its run folder (nothing is written there by building a model).
    """
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from vsynth.paths import configure_offline_backends
    from vsynth.run.context import RunContext
    from vsynth.run.dirs import register_resolvers
    from vsynth.train.checkpoint import load_checkpoint, weights_of

    if weights is not None and weights not in WEIGHTS:
        raise ConfigError(f"weights={weights}: must be ema or model")
    path = Path(str(ckpt)).expanduser()
    obj = load_checkpoint(path, "ckpt")  # plain data only; anything else is refused by name
    if not isinstance(obj.get("config"), str):
        raise CheckpointError(f"ckpt={path}: holds no run config (a checkpoint written before vsynth stored it); "
                              "export needs the run that wrote it")
    w = weights_of(obj, path, "ckpt", prefer=weights or "ema")
    if weights == "ema" and w.which != "ema":
        raise ConfigError(f"weights=ema: {path} holds no EMA weights (the run kept none); weights=model exports "
                          "the raw weights, which the run evaluated")
    register_resolvers()
    configure_offline_backends()
    cfg = apply_overrides(OmegaConf.create(obj["config"]), overrides)
    cfg.mode, cfg.ckpt, cfg.device, cfg.init = "eval", str(path), "cpu", None
    target = OmegaConf.select(cfg, "task._target_")
    try:
        task_cls = get_class(str(target))
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"task._target_={target}: cannot import the task class of {path} ({e})") from e
    task = task_cls(cfg, RunContext(Path(workdir or path.parent), cfg))
    model = task.fresh_model()
    task.load_weights(model, w, key="ckpt", strict=True)  # checks the meta (classes, keypoints) against the data
    return RunModel(task, model.float().eval(), w, cfg, int(obj.get("step") or 0))
