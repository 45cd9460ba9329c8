"""What an experiment's runs inherit from the experiment's own command line.

An experiment (``mode=killswitch``, ``mode=datavalue``) is one ``python -m vsynth`` command that
launches ordinary runs. Every override the user gave it (data paths, trainer knobs, demo effects)
must reach every run, except the experiment's own control keys (its section, and the keys it sets
per run: arm, seed, mode, ...) and Hydra's; the runs also compose the same ``experiment=`` preset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from vsynth.run.context import command_line_overrides

#: keys every experiment sets per run itself
RUN_KEYS = ("mode", "arm", "seed", "init", "name", "ckpt", "experiment")


def passthrough_overrides(overrides: Sequence[str], sections: Sequence[str] = (),
                          own_keys: Sequence[str] = RUN_KEYS) -> list[str]:
    """The command's overrides that every run inherits: not Hydra's, not ``own_keys``, not in ``sections``."""
    out = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.startswith(("hydra.", "hydra/")) or key in own_keys:
            continue
        if any(key == s or key.startswith(f"{s}.") for s in sections):
            continue
        out.append(o)
    return out


def command_overrides(ctx: Any) -> list[str]:
    """The experiment command's ``key=value`` overrides (read back from ``.hydra/`` outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return command_line_overrides()
    p = Path(ctx.dir) / ".hydra" / "overrides.yaml"  # not under Hydra: read what Hydra saved
    if p.is_file():
        import yaml

        return list(yaml.safe_load(p.read_text()) or [])
    return []


def experiment_choice(ctx: Any = None) -> str | None:  # noqa: ARG001  (ctx: the same call shape as command_overrides)
    """The ``experiment=`` preset the command composed (None outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices.get("experiment")
    except Exception:  # noqa: BLE001
        return None


def read_json(p: Path) -> dict[str, Any]:
    """A run's JSON record, or {} when it is missing or half-written."""
    try:
        return json.loads(Path(p).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
