"""Arms applied to sources, once for every task: subsets, factors, ratios and their records.

An arm (``conf/arm/*.yaml``) says which training sources it mixes and how: ``arm.sources.<name>``
with an optional ``subset`` (a seeded draw from the source's train split) and a ``factor``
(oversampling in epoch mode, a weight in ratio mode), plus ``data.ratio`` for per-batch ratios. A
task only lists each source's full train split (:meth:`vsynth.task.Task.source_items`) and builds a
dataset over the items it is given (:meth:`vsynth.task.Task.train_dataset`); everything an arm
decides happens here, so "the same real subset for arms A and B" is one rule for every task:

* the draw depends only on the items (sorted) and ``data.subset_seed``, never on ``seed``, so every
  arm and every seed trains on the same frames;
* the drawn list is written into the run folder (``data/<source>_train_subset<N>.txt``), and the
  counts per source into ``data/sources.json``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np

from vsynth.data.mixer import MixBatchSampler, Source
from vsynth.errors import ConfigError
from vsynth.run.context import command_line_overrides

log = logging.getLogger("vsynth.data")

#: the data sources an arm can draw from; every task's data config spells them so (``data.<source>``)
SOURCES = ("real", "synthetic", "generated")


def draw_subset(items: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` of ``items`` (sorted first), drawn by a permutation that depends only on ``seed``; sorted."""
    items = sorted(items)
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 1337])).permutation(len(items))
    return sorted(items[i] for i in order[:n])


def subset_key(source: str) -> str:
    """The config key a user sets for a source's subset (``data.real_subset`` for ``real``)."""
    return "data.real_subset" if source == "real" else f"arm.sources.{source}.subset"


def arm_items(cfg, source: str, items: Sequence[str], run=None) -> list[str]:
    """The items of ``source`` the arm trains on: all, or its seeded subset (recorded in the run folder)."""
    scfg = cfg.arm.sources[source] or {}
    subset = scfg.get("subset")
    items = list(items)
    if subset is None:
        return items
    key = subset_key(source)
    try:
        n = int(subset)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a whole number of images (or null for all), got {subset!r}") from None
    if n < 1:
        raise ConfigError(f"{key} must be >= 1 (or null for all), got {n}")
    if n > len(items):
        raise ConfigError(f"{key}={n} is larger than the {len(items)} images of the {source} train split")
    seed = int(cfg.data.get("subset_seed", 0) or 0)
    drawn = draw_subset(items, n, seed)
    if run is not None and run.is_main:
        from vsynth.run.atomic import write_text

        out = run.path("data", f"{source}_train_subset{n}.txt")
        write_text(out, "".join(f"{x}\n" for x in drawn))
        log.info("%s: %d of %d train images drawn with data.subset_seed=%d (list: %s)", source, n, len(items), seed, out)
    return drawn


def unused_source_keys(cfg, overrides: Sequence[str]) -> dict[str, list[str]]:
    """Command-line ``data.<source>.*`` keys of sources the arm does not train on, by source.

    The kill switch passes the user's data paths to every run, so arm B (real only) gets the
    synthetic source's keys too: not an error, but never silently ignored either (run.log says so).
    ``real`` is always read (validation and test).
    """
    used = {str(n) for n in cfg.arm.sources} | {"real"}
    out: dict[str, list[str]] = {}
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        parts = key.split(".")
        if len(parts) >= 2 and parts[0] == "data" and parts[1] in SOURCES and parts[1] not in used:
            out.setdefault(parts[1], []).append(key)
    return out


def build_sources(cfg, task, run) -> dict[str, Any]:
    """The arm's training datasets by source name, each over the items the arm draws.

    ``data/sources.json`` in the run folder records, per source, the items of its train split and
    how many the arm trains on (what a learning curve plots: :mod:`vsynth.experiments.data_value`).
    """
    for source, keys in unused_source_keys(cfg, command_line_overrides()).items():
        log.warning("%s: set on the command line, but arm=%s does not train on source '%s' (its sources: %s); "
                    "not read", ", ".join(keys), cfg.arm.get("name", "?"), source,
                    ", ".join(str(n) for n in cfg.arm.sources))
    out, record = {}, {}
    for name in cfg.arm.sources:
        name = str(name)
        items = task.source_items(name)
        drawn = arm_items(cfg, name, items, run)
        out[name] = task.train_dataset(name, drawn)
        subset = (cfg.arm.sources[name] or {}).get("subset")
        record[name] = {"train_items": len(items), "used": len(drawn), "subset": None if subset is None else int(subset)}
    if run is not None and run.is_main:
        from vsynth.run.atomic import write_json

        write_json(run.path("data", "sources.json"), record)
    return out


def build_sampler(cfg, sources: Mapping[str, Any], run) -> MixBatchSampler:
    """The mixer for the arm's sources (their ``factor``) and ``data.ratio``."""
    specs = []
    for name, scfg in cfg.arm.sources.items():
        factor = float((scfg or {}).get("factor", 1.0))
        if name not in sources:
            raise ConfigError(f"arm.sources.{name}: the task built no source named '{name}' (it has {sorted(sources)})")
        specs.append(Source(name, len(sources[name]), factor))
    ratio = cfg.data.get("ratio")
    return MixBatchSampler(
        specs,
        int(cfg.trainer.batch_size),
        ratio=None if ratio is None else float(ratio),
        seed=int(cfg.seed),
        rank=run.rank,
        world_size=run.world_size,
        batches_per_epoch=cfg.data.get("batches_per_epoch"),
    )
