"""What a run knows about itself: its folder, config, process rank, and how it records results."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from vsynth.run.atomic import write_json


def command_line_overrides() -> list[str]:
    """The command line's ``key=value`` overrides as Hydra parsed them ([] outside Hydra: tests, the API)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return [str(o) for o in HydraConfig.get().overrides.task]
    except ValueError:  # Hydra is not running this process
        return []


@dataclass
class RunContext:
    dir: Path
    cfg: DictConfig
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("vsynth"))

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes to the run folder."""
        return self.rank == 0

    def path(self, *parts: str, mkdir: bool = False) -> Path:
        p = self.dir.joinpath(*parts)
        if mkdir:
            p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def checkpoints(self) -> Path:
        return self.path("checkpoints", mkdir=self.is_main)

    @property
    def samples(self) -> Path:
        return self.path("samples", mkdir=self.is_main)

    def append_metrics(self, record: dict[str, Any]) -> None:
        """One line per evaluation in metrics.jsonl."""
        if self.is_main:
            with open(self.path("metrics.jsonl"), "a") as f:
                f.write(json.dumps(record, default=float) + "\n")

    def write_json(self, name: str, obj: Any) -> None:
        if self.is_main:
            write_json(self.path(name), obj)
