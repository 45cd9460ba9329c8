"""Config schema registration and checks: the framework's schema (:mod:`vsynth.config.schema`) and every
task's (``tasks/<task>/config.py``) go into Hydra's ConfigStore before Hydra composes anything.

The YAML files name their schema in their defaults list (``/vsynth/data/keypoints@_here_`` and so
on); the top-level ``conf/config.yaml`` starts from ``vsynth_config``. Task schemas are found by
convention (a ``config.py`` beside each ``tasks/<task>/`` package defining ``SCHEMAS``) and hold only
dataclasses, so registering them imports no backend.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

_registered = [False]


def register() -> None:
    """Put every schema into Hydra's ConfigStore (idempotent)."""
    if _registered[0]:
        return
    from hydra.core.config_store import ConfigStore

    from vsynth.config.schema import VsynthConfig

    cs = ConfigStore.instance()
    cs.store(name="vsynth_config", node=VsynthConfig)
    for module in task_schema_modules():
        for group, nodes in module.SCHEMAS.items():
            for name, node in nodes.items():
                cs.store(group=f"vsynth/{group}", name=name, node=node)
    _registered[0] = True


def task_schema_modules() -> list:
    """``tasks.<task>.config`` of every task package that has one."""
    spec = importlib.util.find_spec("tasks")
    if spec is None or not spec.submodule_search_locations:
        return []
    out = []
    for info in pkgutil.iter_modules(spec.submodule_search_locations):
        if info.ispkg and importlib.util.find_spec(f"tasks.{info.name}.config") is not None:
            out.append(importlib.import_module(f"tasks.{info.name}.config"))
    return out


def schema_node(group: str, name: str) -> type | None:
    """The dataclass registered as ``vsynth/<group>/<name>``."""
    for module in task_schema_modules():
        node = module.SCHEMAS.get(group, {}).get(name)
        if node is not None:
            return node
    return None


def model_configs() -> dict[str, str | None]:
    """``conf/model/<name>.yaml`` -> the model schema it declares (directly or through its defaults)."""
    from omegaconf import OmegaConf

    from vsynth.paths import conf_dir

    folder = conf_dir() / "model"

    def kind(name: str, seen: tuple[str, ...] = ()) -> str | None:
        path = folder / f"{name}.yaml"
        if name in seen or not path.is_file():
            return None
        for entry in OmegaConf.load(path).get("defaults") or []:
            entry = str(entry).split("@")[0]
            if entry.startswith("/vsynth/model/"):
                return entry.rsplit("/", 1)[1]
            if entry != "_self_":
                return kind(entry, (*seen, name))
        return None

    return {p.stem: kind(p.stem) for p in sorted(folder.glob("*.yaml"))}
