"""The common loop on the tiny task, in-process: resume equality, phases, AMP, clipping, guard."""

import json

import pytest
import torch

from tests.framework.helpers import make_trainer
from tests.tiny.task import TinyNet
from vsynth.errors import NonFiniteLossError
from vsynth.train.checkpoint import load_checkpoint
from vsynth.train.trainer import TrainingInterrupted


def _final_state(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    straight = make_trainer(tmp_path / "a", "trainer.length=3")
    straight.fit()
    a = _final_state(tmp_path / "a")

    first = make_trainer(tmp_path / "b", "trainer.length=3", "trainer.stop_at_step=30")  # mid-epoch 2 (22 per epoch)
    with pytest.raises(TrainingInterrupted, match="stopped at step 30/66"):
        first.fit()
    assert _final_state(tmp_path / "b")["step"] == 30
    resumed = make_trainer(tmp_path / "b", "trainer.length=3")
    resumed.fit()
    b = _final_state(tmp_path / "b")
    assert b["step"] == a["step"] == 66
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["ema"]["module"]:
        assert torch.equal(a["ema"]["module"][k], b["ema"]["module"][k]), k
    assert a["composition"] == b["composition"] and a["batches"] == b["batches"]
    hist_a = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    hist_b = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert hist_a == hist_b


def test_frozen_phase_keeps_backbone_and_bn_stats_then_unfreezes(tmp_path):
    t = make_trainer(tmp_path, "trainer.length=3", "trainer.ema.enabled=false",
                     "trainer.phases=[{name: frozen, length: 1, freeze: [backbone]}, {name: unfrozen, length: null}]")
    t.fit()
    torch.manual_seed(0)
    init = TinyNet(16).state_dict()
    frozen_end = load_checkpoint(tmp_path / "checkpoints" / "frozen_end.pt")["model"]
    final = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"]
    for k, v in init.items():
        if k.startswith("backbone"):
            assert torch.equal(frozen_end[k], v), f"{k} changed while frozen"
            if v.dtype.is_floating_point:
                assert not torch.equal(final[k], v), f"{k} never trained after unfreezing"
        else:
            assert not torch.equal(frozen_end[k], v), f"{k} did not train in the frozen phase"


def test_bf16_autocast_on_cpu_trains(tmp_path):
    t = make_trainer(tmp_path, "trainer.length=1", "trainer.amp=bf16")
    metrics = t.fit().metrics
    assert metrics["test/acc"] > 0.5


def test_grad_norm_clipping_bounds_the_update(tmp_path):
    clip = 1e-3
    t = make_trainer(tmp_path, "trainer.length=1", "+data.batches_per_epoch=1", f"trainer.clip_grad_norm={clip}",
                     "trainer.optimizer.lr=1.0", "trainer.optimizer.momentum=0", "trainer.optimizer.weight_decay=0",
                     "trainer.schedule.warmup=0", "trainer.ema.enabled=false")
    t.fit()
    torch.manual_seed(0)
    init = TinyNet(16).state_dict()
    final = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"]
    delta = torch.sqrt(sum(((final[k] - init[k]) ** 2).sum() for k in init if "running" not in k and "num_batches" not in k))
    assert 0 < float(delta) <= clip * 1.0001


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    t = make_trainer(tmp_path, "trainer.length=3", "task.poison_step=30")
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* at step 30 .*last.pt"):
        t.fit()
    kept = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert kept["step"] == 22  # end of epoch 1, the last good state
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.dtype.is_floating_point)


def test_composition_is_recorded_from_loaded_batches(tmp_path):
    t = make_trainer(tmp_path, "arm=ratio", "data.ratio=0.25", "trainer.length=1")
    t.fit()
    comp = json.loads((tmp_path / "composition.json").read_text())
    assert comp["mode"] == "ratio" and comp["expected_per_batch"] == {"real": 2, "generated": 6}
    assert list(comp["batches_by_composition"]) == ["6 generated + 2 real = 8 total"]
    assert comp["samples_per_source"]["real"] * 3 == comp["samples_per_source"]["generated"]


def test_resume_with_another_world_size_is_refused(tmp_path):
    from vsynth.errors import ConfigError
    from vsynth.train.checkpoint import save_checkpoint

    first = make_trainer(tmp_path, "trainer.length=3", "trainer.stop_at_step=5")
    with pytest.raises(TrainingInterrupted):
        first.fit()
    ck = _final_state(tmp_path)
    assert ck["world_size"] == 1
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", {**{k: v for k, v in ck.items() if k != "format"},
                                                           "world_size": 2})  # as a 2-process job wrote it
    with pytest.raises(ConfigError, match="trained by 2 process"):
        make_trainer(tmp_path, "trainer.length=3").fit()
    make_trainer(tmp_path, "trainer.length=3", "resume=force").fit()  # forced: continues
