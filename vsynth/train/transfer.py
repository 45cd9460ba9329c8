"""Loading another checkpoint's weights into a model by tensor name and shape.

Every task starts from foreign checkpoints (an ultralytics ``.pt``, YOLOX's COCO ``.pth``, an mmseg
checkpoint, a vsynth one) whose heads may not fit; the matching is the same everywhere, while the
thresholds and the wording of the refusal are each task's (they name its model knobs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn


@dataclass
class StateMatch:
    """How a state dict fits a model: what can be copied, what has another shape, what is absent."""

    matched: dict[str, torch.Tensor] = field(default_factory=dict)
    skipped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # name, file, model
    missing: list[str] = field(default_factory=list)  # model tensors the file does not have
    unfit: list[str] = field(default_factory=list)  # skipped or missing, in the model's order
    total: int = 0  # tensors in the model

    @property
    def loaded(self) -> int:
        return len(self.matched)


def match_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> StateMatch:
    """Pair ``state``'s tensors with ``model``'s by name and shape (in the model's order)."""
    own = model.state_dict()
    m = StateMatch(total=len(own))
    for k, v in own.items():
        if k in state and tuple(state[k].shape) == tuple(v.shape):
            m.matched[k] = state[k]
            continue
        if k in state:
            m.skipped.append((k, tuple(state[k].shape), tuple(v.shape)))
        else:
            m.missing.append(k)
        m.unfit.append(k)
    return m


def load_matched(model: nn.Module, match: StateMatch) -> None:
    """Copy the matched tensors into ``model`` (in its dtypes); the others keep their values."""
    own = model.state_dict()
    own.update({k: v.to(own[k].dtype) for k, v in match.matched.items()})
    model.load_state_dict(own)
