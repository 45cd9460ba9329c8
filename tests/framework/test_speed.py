"""The CUDA-path knobs on CPU: each resolves as documented, is applied when set, is ignored safely
where it must be, and exact resume stays bit-identical (also with persistent loader workers);
losses are read back only at the log interval without changing what is logged or the guard."""

import dataclasses

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from tests.framework.helpers import make_trainer
from vsynth.errors import ConfigError, NonFiniteLossError
from vsynth.train.checkpoint import load_checkpoint
from vsynth.train.parts import Part
from vsynth.train.progress import Progress, StepRecord
from vsynth.train.speed import Speed, compiled, cudnn_benchmark, to_channels_last
from vsynth.train.trainer import TrainingInterrupted


def _speed(device: str, fixed: bool = True, **keys):
    tc = OmegaConf.create({"workers": 2, **keys})
    return Speed.from_config(tc, torch.device(device), fixed)


def test_auto_is_on_with_cuda_only_where_safe_and_off_on_cpu():
    assert _speed("cuda") == Speed(True, True, True, True, None)
    assert _speed("cuda", fixed=False).cudnn_benchmark is False  # multiscale: shapes change
    assert _speed("cuda", workers=0).persistent_workers is False
    assert _speed("cpu") == Speed(False, False, False, False, None)


def test_set_values_apply_and_cuda_only_ones_are_ignored_on_cpu_with_a_line(caplog):
    with caplog.at_level("INFO", logger="vsynth.train"):
        s = _speed("cpu", pin_memory=True, persistent_workers=True, cudnn_benchmark=True, channels_last=True,
                   compile="reduce-overhead")
    assert s == Speed(False, True, False, True, "reduce-overhead")
    assert "trainer.pin_memory=true has no effect on cpu" in caplog.text
    assert "trainer.cudnn_benchmark=true has no effect on cpu" in caplog.text
    assert _speed("cuda", pin_memory=False, cudnn_benchmark=False, channels_last=False, compile=True) == \
        Speed(False, True, False, False, "default")
    with pytest.raises(ConfigError, match="trainer.channels_last must be auto, true or false, got 'yes'"):
        _speed("cpu", channels_last="yes")
    with pytest.raises(ConfigError, match="trainer.compile must be false, true or one of"):
        _speed("cpu", compile="fast")


def test_channels_last_and_compile_wrap_without_copying_weights():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    w = conv[0].weight
    out = to_channels_last(conv)
    assert out[0].weight is w and w.is_contiguous(memory_format=torch.channels_last)
    assert compiled(conv, None) is conv
    c = compiled(conv, "default")
    assert c._orig_mod is conv and list(c.parameters())[0] is w  # same parameters: optimizer, EMA, checkpoints


def test_cudnn_benchmark_is_on_in_training_steps_and_off_in_evaluation(tmp_path):
    seen = {"train": set(), "eval": set()}
    t = make_trainer(tmp_path, "trainer.length=1", "+data.batches_per_epoch=4")
    t.setup()
    t.speed = dataclasses.replace(t.speed, cudnn_benchmark=True)  # as on a GPU with fixed shapes (harmless on CPU)
    step, predict = t.task.training_step, t.task.predict_step
    t.task.training_step = lambda m, b: (seen["train"].add(torch.backends.cudnn.benchmark), step(m, b))[1]
    t.task.predict_step = lambda m, b: (seen["eval"].add(torch.backends.cudnn.benchmark), predict(m, b))[1]
    before = torch.backends.cudnn.benchmark
    t.resume()
    t.train()
    assert seen == {"train": {True}, "eval": {False}}
    assert torch.backends.cudnn.benchmark == before
    with cudnn_benchmark(True):
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark == before


def test_fused_optimizer_when_set(tmp_path):
    t = make_trainer(tmp_path, "trainer.length=1", "+data.batches_per_epoch=3", "trainer.optimizer.fused=true")
    t.fit()
    assert t.state.optimizer.defaults["fused"] is True
    assert make_trainer(tmp_path / "b", "trainer.length=1").trainer_cfg.optimizer.fused is False


class PendingProbe(Part):
    """How many steps are still waiting to be read back after each step."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    def after_step(self, t) -> None:
        self.pending.append(len(t.progress.pending))


def test_losses_are_read_back_only_at_log_interval_and_checkpoints(tmp_path):
    t = make_trainer(tmp_path, "trainer.length=2", "trainer.log_interval=7", "trainer.val.interval=100")
    t.setup()
    probe = PendingProbe()
    t.parts.append(probe)  # after Checkpointing, which saves last.pt at each epoch end (22 steps)
    t.resume()
    t.train()
    expected = [0 if s % 7 == 0 or s % 22 == 0 else (s % 7 if s < 22 else min(s % 7, s - 22)) for s in range(1, 45)]
    assert probe.pending == expected


def _tb_losses(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"] if tag.startswith("train/")}


def test_what_is_logged_does_not_depend_on_when_it_is_read(tmp_path, caplog):
    with caplog.at_level("INFO", logger="vsynth.train"):
        make_trainer(tmp_path / "a", "trainer.length=1", "trainer.log_interval=1").fit()
    every = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    caplog.clear()
    with caplog.at_level("INFO", logger="vsynth.train"):
        make_trainer(tmp_path / "b", "trainer.length=1", "trainer.log_interval=4").fit()
    lazy = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    a, b = _tb_losses(tmp_path / "a"), _tb_losses(tmp_path / "b")
    assert set(a) == {"train/loss", "train/lr", "train/ce"} and [s for s, _ in a["train/loss"]] == list(range(1, 23))
    assert a == b  # every step's scalars, the same values
    steps = [int(line.split()[1].split("/")[0]) for line in lazy]
    assert steps == [4, 8, 12, 16, 20, 22]

    def strip_rate(line):
        return line.rsplit(" ", 2)[0]

    by_step = {int(line.split()[1].split("/")[0]): strip_rate(line) for line in every}
    assert [strip_rate(line) for line in lazy] == [by_step[s] for s in steps]


def test_progress_flush_stops_at_the_first_non_finite_loss():
    p = Progress(10, 0, enabled=False, bar=False, log_interval=5, tb_dir=None)
    for i, loss in enumerate([1.0, 2.0, float("inf"), 3.0], start=1):
        p.record(StepRecord(i, 0, "train", torch.tensor(loss), 0.1, {"a": torch.tensor(float(i))}, 8))
    bad = p.flush()
    assert (bad.step, bad.loss, bad.parts) == (3, float("inf"), {"a": 3.0}) and p.pending == []
    assert p.flush() is None


def test_guard_reads_lazily_but_names_the_step_and_never_saves_after_it(tmp_path):
    # log every 50 steps: the NaN of step 30 is found when the epoch-end checkpoint (step 44) is due
    t = make_trainer(tmp_path, "trainer.length=3", "task.poison_step=30", "trainer.log_interval=50")
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at step 30 \(epoch 2\).*last.pt"):
        t.fit()
    assert t.state.step == 44
    kept = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert kept["step"] == 22
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.dtype.is_floating_point)


def test_an_error_after_an_unread_non_finite_loss_is_reported_as_that_loss(tmp_path):
    t = make_trainer(tmp_path, "trainer.length=3", "task.poison_step=25", "task.crash_step=27", "trainer.log_interval=50")
    with pytest.raises(NonFiniteLossError, match=r"at step 25 ") as info:
        t.fit()
    assert "crash_step" in str(info.value.__cause__)


def _pids_and_tags(tmp_path, *overrides):
    """Per epoch: the loader processes that loaded the batches, and the dataset tag they saw."""
    class Probe(Part):
        def __init__(self):
            self.epochs: dict[int, tuple[set, set]] = {}

        def before_step(self, t, batch, sources):
            pids, tags = self.epochs.setdefault(t.state.step // t.steps_per_epoch, (set(), set()))
            pids.update(batch["pid"].tolist())
            tags.update(batch["tag"].tolist())

    t = make_trainer(tmp_path, "trainer.length=2", "trainer.workers=1", "trainer.persistent_workers=true", *overrides)
    t.setup()
    probe = Probe()
    t.parts.append(probe)
    t.resume()
    t.train()
    return [probe.epochs[e] for e in range(2)]


def test_persistent_workers_live_across_epochs_and_restart_when_the_task_changed_its_datasets(tmp_path):
    import os

    kept = _pids_and_tags(tmp_path / "a")  # the tiny task's hook says its datasets did not change
    assert len({p for pids, _ in kept for p in pids}) == 1 and os.getpid() not in kept[0][0]
    changed = _pids_and_tags(tmp_path / "b", "task.epoch_hook=changed")
    assert [tags for _, tags in changed] == [{0}, {1}]  # the restarted workers see each epoch's datasets
    assert len({p for pids, _ in changed for p in pids}) == 2
    silent = _pids_and_tags(tmp_path / "c", "task.epoch_hook=silent")  # a hook that does not say: restarted
    assert [tags for _, tags in silent] == [{0}, {1}] and len({p for pids, _ in silent for p in pids}) == 2


def test_resume_with_persistent_workers_is_bit_identical(tmp_path):
    opts = ("trainer.length=3", "trainer.workers=2", "trainer.persistent_workers=true")
    make_trainer(tmp_path / "a", *opts).fit()
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    with pytest.raises(TrainingInterrupted, match="stopped at step 30/66"):
        make_trainer(tmp_path / "b", *opts, "trainer.stop_at_step=30").fit()
    make_trainer(tmp_path / "b", *opts).fit()
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    make_trainer(tmp_path / "c", "trainer.length=3", "trainer.workers=0").fit()  # the same run in the main process
    c = load_checkpoint(tmp_path / "c" / "checkpoints" / "last.pt")
    for other in (b, c):
        assert other["step"] == 66
        for k in a["model"]:
            assert torch.equal(a["model"][k], other["model"][k]), k
        for k in a["ema"]["module"]:
            assert torch.equal(a["ema"]["module"][k], other["ema"]["module"][k]), k


@pytest.mark.slow
def test_compiled_training_matches_eager_and_resumes_exactly(tmp_path, monkeypatch):
    import torch._inductor.config

    # compiled dropout draws from its own generator unless told to use eager's (then the runs compare)
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    opts = ("trainer.length=2", "trainer.threads=1")
    make_trainer(tmp_path / "eager", *opts).fit()
    t = make_trainer(tmp_path / "a", *opts, "trainer.compile=true")
    t.fit()
    assert t.step_model._orig_mod is t.state.model
    with pytest.raises(TrainingInterrupted):
        make_trainer(tmp_path / "b", *opts, "trainer.compile=true", "trainer.stop_at_step=30").fit()
    make_trainer(tmp_path / "b", *opts, "trainer.compile=true").fit()
    eager, a, b = (load_checkpoint(tmp_path / n / "checkpoints" / "last.pt")["model"] for n in ("eager", "a", "b"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
        if a[k].dtype.is_floating_point:
            torch.testing.assert_close(a[k], eager[k], rtol=1e-4, atol=1e-5)


def test_channels_last_yolox_trains_like_the_contiguous_model():
    """The layout knob on a real backend model: same loss and gradients up to rounding (NHWC kernels)."""
    import copy

    from tasks.detection.model import build_yolox, model_spec

    nano = model_spec({"name": "yolox_nano", "depth": 0.33, "width": 0.25, "depthwise": True})
    model = build_yolox(nano, 3, seed=0).train()
    nhwc = to_channels_last(copy.deepcopy(model))
    imgs = torch.rand(2, 3, 64, 64) * 255
    targets = torch.zeros(2, 120, 5)
    targets[:, 0] = torch.tensor([1.0, 32, 32, 20, 16])  # class, cx, cy, w, h
    losses = []
    for m in (model, nhwc):
        out = m(imgs, targets)
        out["total_loss"].backward()
        losses.append(float(out["total_loss"].detach()))
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in nhwc.parameters() if p.ndim == 4)
    assert not all(p.is_contiguous() for p in nhwc.parameters())  # e.g. the 3x3 stem (1x1 kernels look the same)
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    for (name, a), b in zip(model.named_parameters(), nhwc.parameters()):  # rounding: other summation orders
        assert float((a.grad - b.grad).abs().max()) <= 2e-3 * float(a.grad.abs().max()) + 1e-6, name


def test_checkpoints_hold_standard_layout_weights_after_channels_last_training():
    from vsynth.train.ema import ModelEMA
    from vsynth.train.state import TrainState

    model = to_channels_last(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))
    state = TrainState(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.amp.GradScaler("cpu", enabled=False),
                       ModelEMA(model))
    assert not model[0].weight.is_contiguous()
    payload = state.payload(type("T", (), {"name": "t", "checkpoint_meta": lambda self: {}})(), OmegaConf.create({}))
    assert payload["model"]["0.weight"].is_contiguous() and payload["ema"]["module"]["0.weight"].is_contiguous()
    assert torch.equal(payload["model"]["0.weight"], model[0].weight) and payload["ema"]["updates"] == 0
