"""Range checks beside the schema: what a type cannot say (a probability in [0, 1], a positive batch).

Run once at the start of every job, before any data is read, so a bad value is one line naming the
key (exit 2, the run folder marked failed) instead of an error deep inside a backend. Keys added with
Hydra's ``+`` that no schema declares are refused here too: nothing would read them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

from omegaconf import DictConfig, ListConfig, OmegaConf

from vsynth.errors import ConfigError

#: the ways a job can run (``mode=``)
MODES = ("train", "eval", "killswitch", "datavalue", "consistency")


def _unknown_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Keys of typed (dataclass) nodes that their dataclass does not declare."""
    if isinstance(node, DictConfig):
        typ = OmegaConf.get_type(node)
        allowed = {f.name for f in dataclasses.fields(typ)} if dataclasses.is_dataclass(typ) else None
        for key in node.keys():
            if allowed is not None and key not in allowed:
                yield f"{prefix}{key}"
            value = node._get_node(key)
            if isinstance(value, (DictConfig, ListConfig)):
                yield from _unknown_keys(value, f"{prefix}{key}.")
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            value = node._get_node(i)
            if isinstance(value, (DictConfig, ListConfig)):
                yield from _unknown_keys(value, f"{prefix}{i}.")


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def _check(cfg: DictConfig, key: str, ok: Callable[[Any], bool], what: str, optional: bool = False) -> None:
    value = _get(cfg, key)
    if value is None and optional:
        return
    try:
        good = value is not None and ok(value)
    except TypeError:
        good = False
    if not good:
        raise ConfigError(f"{key} must be {what}, got {value!r}")


def check(cfg: DictConfig) -> None:
    """Raise ConfigError (naming the key) for the first value out of range."""
    from vsynth.train.speed import COMPILE_MODES

    unknown = next(_unknown_keys(cfg), None)
    if unknown is not None:
        raise ConfigError(f"{unknown}: not a config key of vsynth or of this task (added with '+'?); nothing would "
                          "read it. `--cfg job` prints the composed config")
    one_of = lambda *options: (lambda v: v in options, " | ".join(map(str, options)))  # noqa: E731
    rules: list[tuple[str, Callable[[Any], bool], str, bool]] = [
        ("mode", *one_of(*MODES), False),
        ("resume", *one_of("auto", "never", "force"), False),
        ("seed", lambda v: v >= 0, ">= 0", False),
        ("eval.split", *one_of("val", "test"), False),
        ("eval.batch", lambda v: v >= 1, ">= 1", False),
        ("eval.workers", lambda v: v >= 0, ">= 0", False),
        ("eval.max_images", lambda v: v >= 1, ">= 1 or null", True),
        ("eval.conf", lambda v: 0 <= v <= 1, "in [0, 1]", False),
        ("eval.nms", lambda v: 0 < v <= 1, "in (0, 1]", False),
        ("eval.max_det", lambda v: v >= 1, ">= 1", False),
        ("trainer.unit", *one_of("epoch", "iter"), False),
        ("trainer.length", lambda v: v > 0, "> 0", False),
        ("trainer.batch_size", lambda v: v >= 1, ">= 1", False),
        ("trainer.workers", lambda v: v >= 0, ">= 0", False),
        ("trainer.threads", lambda v: v >= 1, "a positive integer or null", True),
        ("trainer.optimizer.name", *one_of("sgd", "adamw"), False),
        ("trainer.optimizer.lr", lambda v: v > 0, "> 0", False),
        ("trainer.optimizer.momentum", lambda v: 0 <= v < 1, "in [0, 1)", False),
        ("trainer.optimizer.beta2", lambda v: 0 <= v < 1, "in [0, 1)", False),
        ("trainer.optimizer.weight_decay", lambda v: v >= 0, ">= 0", False),
        ("trainer.schedule.warmup", lambda v: v >= 0, ">= 0", False),
        ("trainer.schedule.warmup_factor", lambda v: 0 < v <= 1, "in (0, 1]", False),
        ("trainer.schedule.min_lr", lambda v: v >= 0, ">= 0 or null", True),
        ("trainer.schedule.final_lr_ratio", lambda v: 0 <= v <= 1, "in [0, 1]", False),
        ("trainer.amp", *one_of("auto", "fp16", "bf16", "off"), False),
        ("trainer.ema.decay", lambda v: 0 <= v < 1, "in [0, 1)", False),
        ("trainer.ema.tau", lambda v: v >= 0, ">= 0", False),
        ("trainer.clip_grad_norm", lambda v: v > 0, "> 0 or null", True),
        ("trainer.val.interval", lambda v: v > 0, "> 0", False),
        ("trainer.val.mode", *one_of("max", "min"), False),
        ("trainer.checkpoint.every", lambda v: v > 0, "> 0 or null", True),
        ("trainer.log_interval", lambda v: v >= 1, ">= 1", False),
        ("trainer.progress_bar", lambda v: v in ("auto", True, False), "auto | true | false", False),
        ("trainer.stop_at_step", lambda v: v >= 1, ">= 1 or null", True),
        *[(f"trainer.{k}", lambda v: v in ("auto", True, False), "auto | true | false", False)
          for k in ("pin_memory", "persistent_workers", "cudnn_benchmark", "channels_last")],
        ("trainer.compile", lambda v: v in (True, False, *COMPILE_MODES), "false | true | a torch.compile mode", False),
        ("data.ratio", lambda v: 0 <= v <= 1, "in [0, 1]", True),
        ("data.real_subset", lambda v: v >= 1, ">= 1 (or null for all)", True),
        ("data.subset_seed", lambda v: v >= 0, ">= 0", True),
    ]
    for key, ok, what, optional in rules:
        _check(cfg, key, ok, what, optional)
    for name, source in (cfg.arm.get("sources") or {}).items():
        _check(cfg, f"arm.sources.{name}.factor", lambda v: v >= 0, ">= 0", False)
        _check(cfg, f"arm.sources.{name}.subset", lambda v: v >= 1, ">= 1 (or null for all)", True)
    if cfg.get("killswitch") is not None:
        _check(cfg, "killswitch.margin", lambda v: v >= 0, ">= 0", False)
        _check(cfg, "killswitch.seeds", lambda v: len(v) >= 1, "at least one seed", False)
        _check(cfg, "killswitch.bootstrap.samples", lambda v: v >= 2, ">= 2", False)
        _check(cfg, "killswitch.bootstrap.level", lambda v: 0 < v < 1, "in (0, 1)", False)
    if cfg.get("data_value") is not None:
        _check(cfg, "data_value.seeds", lambda v: len(v) >= 1, "at least one seed", False)
        _check(cfg, "data_value.mode", lambda v: v in ("max", "min"), "max | min", False)
        _check(cfg, "data_value.bootstrap.samples", lambda v: v >= 2, ">= 2", False)
        _check(cfg, "data_value.bootstrap.level", lambda v: 0 < v < 1, "in (0, 1)", False)
