"""Loading another checkpoint's weights into a model by tensor name and shape.

Every task starts from foreign checkpoints (an ultralytics ``.pt``, YOLOX's COCO ``.pth``, an mmseg
checkpoint, a vsynth one) whose heads may not fit. The matching, the refusals and the run.log lines
are the same everywhere; a task only says how much must fit and how the user fixes a mismatch (its
own model knobs), through :class:`FitRule`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import nn

from vsynth.errors import CheckpointError


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


@dataclass(frozen=True)
class FitRule:
    """What a task requires of a checkpoint, and what it tells the user when the file does not fit.

    ``what`` names the model in messages ("yolox_nano with 7 classes"); ``fix`` says which knobs to
    check; ``min_fraction`` of the model's tensors must come from an ``init`` file (an unrelated
    checkpoint is refused); ``optional`` prefixes may be absent even when every tensor must fit
    (e.g. an auxiliary head unused at inference).
    """

    what: str = "this model"
    fix: str = "check model= and the data"
    min_fraction: float = 0.5
    optional: Sequence[str] = ()


def _example(m: StateMatch, names: Sequence[str]) -> str:
    for k, a, b in m.skipped:
        if k in names:
            return f"{k}: {list(a)} in the file vs {list(b)} in the model"
    return f"{names[0]} missing"


def transfer(model: nn.Module, state: Mapping[str, torch.Tensor], key: str, path, rule: FitRule = FitRule(),
             strict: bool = False) -> StateMatch:
    """Copy the tensors of ``state`` that fit ``model``; refuse an unrelated (or, ``strict``, any unfit) file.

    ``strict`` is for evaluation (``ckpt=``): every tensor but ``rule.optional`` ones must fit.
    """
    m = match_state(model, state)
    if strict:
        unfit = [k for k in m.unfit if not any(k.startswith(p) for p in rule.optional)]
        if unfit:
            raise CheckpointError(f"{key}={path}: does not fit {rule.what} ({len(unfit)} of {m.total} tensors differ, "
                                  f"e.g. {_example(m, unfit)}); {rule.fix}")
    if m.loaded < rule.min_fraction * m.total:
        raise CheckpointError(f"{key}={path}: only {m.loaded} of {m.total} tensors fit {rule.what}; is it a checkpoint "
                              f"of another architecture? {rule.fix}")
    load_matched(model, m)
    return m


def describe(m: StateMatch, key: str, kind: str, path) -> list[str]:
    """run.log lines: how many tensors came from the file, and which did not fit and why."""
    lines = [f"{key}: {m.loaded}/{m.total} tensors from {kind} checkpoint {path}"]
    if m.skipped:
        lines.append(f"{key}: skipped {len(m.skipped)} tensor(s) whose shape differs (expected for an output layer "
                     "when the classes or keypoints change):")
        lines += [f"{key}:   {k}: {list(a)} in the checkpoint, {list(b)} in the model" for k, a, b in m.skipped]
    if m.missing:
        lines.append(f"{key}: {len(m.missing)} model tensor(s) not in the checkpoint (kept fresh): "
                     + ", ".join(m.missing[:10]) + (" ..." if len(m.missing) > 10 else ""))
    return lines


def load_into(model: nn.Module, weights, key: str, rule: FitRule = FitRule(), strict: bool = False) -> list[str]:
    """:func:`transfer` a :class:`~vsynth.train.checkpoint.Weights` into ``model``; the run.log lines."""
    m = transfer(model, weights.state, key, weights.path, rule, strict=strict)
    return describe(m, key, weights.kind, weights.path.resolve())
