"""The arm an experiment runs in a role (the kill switch's control and treatment, data value's real-only and
with-extra): a ``conf/arm`` option plus the overrides that make it, under a label that names its runs.

Arms that share one config differ only in an override (segmentation's ``ratio`` arm with ``data.ratio=1.0``
vs ``0.5``); a role says so in one place, the same way for every experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from vsynth.errors import ConfigError


@dataclass(frozen=True)
class Role:
    """The control or the treatment: a ``conf/arm`` option plus overrides that make it (for arms that share a
    config, e.g. ``ratio`` with ``data.ratio=1.0`` vs ``0.5``), under a label that names its runs."""

    arm: str
    label: str
    overrides: tuple[str, ...] = ()

    @classmethod
    def parse(cls, node: Any, key: str, *, labelled: bool = True) -> "Role":
        """``killswitch.control: B`` or ``{arm: ratio, label: real-only, overrides: [data.ratio=1.0]}``.

        ``labelled=False``: the experiment names the runs itself (data value: by role), so a ``label``
        would be ignored; it is refused instead.
        """
        from omegaconf import OmegaConf

        if isinstance(node, str):
            return cls(node, node)
        if OmegaConf.is_config(node):
            node = OmegaConf.to_container(node, resolve=True)
        if not isinstance(node, Mapping) or not node.get("arm"):
            raise ConfigError(f"{key} must be an arm name or {{arm: NAME, label: LABEL, overrides: [...]}}, got {node!r}")
        known = ("arm", "label", "overrides") if labelled else ("arm", "overrides")
        unknown = sorted(set(node) - set(known))
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(known)})")
        overrides = node.get("overrides") or []
        if not isinstance(overrides, (list, tuple)) or not all(isinstance(o, str) and "=" in o for o in overrides):
            raise ConfigError(f"{key}.overrides: expected a list of key=value overrides, got {overrides!r}")
        return cls(str(node["arm"]), str(node.get("label") or node["arm"]), tuple(overrides))

    def args(self) -> list[str]:
        """The run's own overrides for this role: ``arm=NAME`` and the role's overrides."""
        return [f"arm={self.arm}", *self.overrides]
