import math

import pytest
import torch
from torch import nn

from vsynth.errors import CheckpointError, ConfigError
from vsynth.train import checkpoint as ck
from vsynth.train.amp import resolve_amp
from vsynth.train.ema import ModelEMA
from vsynth.train.optim import param_groups
from vsynth.train.phases import apply_freeze, phase_at, plan_phases, set_train_mode
from vsynth.train.schedule import WarmupCosine


def test_warmup_then_cosine_values():
    s = WarmupCosine(lr=1e-3, total_steps=1100, warmup_steps=100, warmup_factor=1e-3, min_lr=1e-4)
    assert s(0) == pytest.approx(1e-6)
    assert s(50) == pytest.approx(1e-3 * (1e-3 + (1 - 1e-3) * 0.5))
    assert s(100) == pytest.approx(1e-3)
    assert s(600) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way through the cosine
    assert s(1100) == pytest.approx(1e-4)
    assert all(s(i) >= s(i + 1) for i in range(100, 1100))


def test_phase_plan_and_lookup():
    phases = plan_phases([{"name": "frozen", "length": 2, "freeze": ["backbone"]}, {"name": "unfrozen", "length": None}],
                         total_steps=50, steps_per_unit=10)
    assert [(p.name, p.start, p.end, p.freeze) for p in phases] == [("frozen", 0, 20, ("backbone",)), ("unfrozen", 20, 50, ())]
    assert phase_at(phases, 19).name == "frozen" and phase_at(phases, 20).name == "unfrozen"
    with pytest.raises(ConfigError, match="only for the last phase"):
        plan_phases([{"name": "a", "length": None}, {"name": "b", "length": 1}], 10, 1)
    with pytest.raises(ConfigError, match="cover 3 of 10"):
        plan_phases([{"name": "a", "length": 1}, {"name": "b", "length": 2}], 10, 1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        self.head = nn.Linear(4, 2)


def test_freeze_sets_grads_and_keeps_bn_in_eval():
    m = Net()
    n = apply_freeze(m, ["backbone"])
    assert n == sum(p.numel() for p in m.backbone.parameters())
    assert not any(p.requires_grad for p in m.backbone.parameters()) and all(p.requires_grad for p in m.head.parameters())
    set_train_mode(m, ["backbone"])
    assert m.training and m.head.training and not m.backbone[1].training
    apply_freeze(m, [])
    set_train_mode(m, [])
    assert all(p.requires_grad for p in m.parameters()) and m.backbone[1].training
    with pytest.raises(ConfigError, match="matches no module"):
        apply_freeze(m, ["neck"])


def test_no_weight_decay_on_norms_and_biases():
    groups = param_groups(Net(), 0.05)
    decay, no_decay = groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) == 2  # the two Linear weights
    assert len(no_decay["params"]) == 4  # two biases + BN weight and bias


def test_ema_follows_rule():
    m = nn.Linear(2, 1, bias=False)
    ema = ModelEMA(m, decay=0.9, tau=0)
    with torch.no_grad():
        m.weight.fill_(1.0)
    before = ema.module.weight.clone()
    ema.update(m)
    assert torch.allclose(ema.module.weight, 0.9 * before + 0.1)
    ema2 = ModelEMA(m, decay=0.9, tau=10)
    ema2.update(m)
    assert ema2.current_decay() == pytest.approx(0.9 * (1 - math.exp(-1 / 10)))


def test_amp_resolution_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) == "off" and resolve_amp("fp16", cpu) == "off"
    assert resolve_amp("bf16", cpu) == "bf16" and resolve_amp(False, cpu) == "off"
    assert resolve_amp("fp16", torch.device("cuda", 0)) == "fp16"
    with pytest.raises(ConfigError, match="trainer.amp"):
        resolve_amp("fp8", cpu)


def test_checkpoint_roundtrip_is_weights_only_and_restores_rng(tmp_path):
    p = tmp_path / "c.pt"
    state = ck.rng_state()
    a = torch.rand(3)
    ck.save_checkpoint(p, {"model": {"w": torch.ones(2)}, "rng": state, "nested": {"k": [1, 2.5, "x", (3, 4)]}})
    loaded = ck.load_checkpoint(p)
    assert loaded["nested"]["k"][3] == (3, 4)
    ck.set_rng_state(loaded["rng"])
    assert torch.equal(torch.rand(3), a)


def test_checkpoint_refuses_pickled_code_and_garbage(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "x": Evil()}, p)
    with pytest.raises(CheckpointError, match="ckpt=.*evil.pt: refused: the file references 'builtins.print'"):
        ck.load_checkpoint(p)
    g = tmp_path / "garbage.pt"
    g.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        ck.load_checkpoint(g, key="init")
    with pytest.raises(CheckpointError, match="init=.*missing.pt: file not found"):
        ck.load_checkpoint(tmp_path / "missing.pt", key="init")
    foreign = tmp_path / "foreign.pt"
    torch.save({"w": torch.ones(1)}, foreign)
    with pytest.raises(CheckpointError, match="no 'vsynth-checkpoint/1' marker"):
        ck.load_checkpoint(foreign)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "last.pt"
    ck.save_checkpoint(p, {"v": 1})
    good = p.read_bytes()

    def broken_save(obj, f):
        open(f, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        ck.save_checkpoint(p, {"v": 2})
    assert p.read_bytes() == good
    assert [x.name for x in tmp_path.iterdir()] == ["last.pt"]


def test_error_from_a_dataloader_worker_keeps_its_own_line():
    from vsynth.app import _error_line
    from vsynth.errors import DataError

    wrapped = DataError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                        '  File "x.py", line 1, in f\nvsynth.errors.DataError: /data/a.png: label 7 outside the 4 classes')
    assert _error_line(wrapped) == "/data/a.png: label 7 outside the 4 classes"
    assert _error_line(DataError("plain: message\nmore")) == "plain: message"
