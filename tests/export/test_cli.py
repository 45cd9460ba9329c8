"""``python -m vsynth.export``: the shared command on the test task (tests/tiny/export.py): what is written,
which weights, ONNX against torch, and bad input (one line naming the key or file, exit 2, nothing written)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import run_cli, tiny_args
from tests.export.helpers import export_cli, onnx_outputs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-tiny")
    p = run_cli(tiny_args("trainer.threads=1", f"hydra.run.dir={root / 'run'}"), root)
    assert p.returncode == 0, p.stderr[-3000:]
    return root / "run"


def _cli(args, tmp_path):
    return export_cli(args, tmp_path, tmp_path / ".cache")


def _error(p) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("vsynth.export: error: "), p.stderr
    return lines[0]


def _main(args, capsys) -> subprocess.CompletedProcess:
    """The command in this process (the same ``main`` as ``python -m vsynth.export``), as a finished process."""
    from vsynth.export.__main__ import main

    capsys.readouterr()
    code = main(list(args))
    cap = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, cap.out, cap.err)


def test_export_writes_the_weights_vsynth_evaluated_and_onnx_that_matches_them(tiny_run, tmp_path, capsys):
    from vsynth.train.checkpoint import load_checkpoint

    ckpt = tiny_run / "checkpoints" / "best.pt"
    p = _cli([f"ckpt={ckpt}", "onnx=true"], tmp_path)
    assert p.returncode == 0, p.stderr
    out = ckpt.parent / "best-export"  # the default: beside the checkpoint
    assert f"Exported to {out}" in p.stdout
    assert sorted(f.name for f in out.iterdir()) == ["export.json", "tiny.onnx", "tiny.pt"]
    assert not [f for f in ckpt.parent.iterdir() if f.name.startswith(".")]  # no staging folder left
    manifest = json.loads((out / "export.json").read_text())
    stored = load_checkpoint(ckpt)
    assert manifest["source"] == {"ckpt": str(ckpt.resolve()), "weights": "ema", "step": stored["step"],
                                  "meta": stored["meta"]}
    state = torch.load(out / "tiny.pt", weights_only=True)
    ema = stored["ema"]["module"]
    assert state.keys() == ema.keys() and all(torch.equal(state[k], ema[k]) for k in ema)
    assert not all(torch.equal(stored["model"][k], ema[k]) for k in ema)  # the EMA really differs from the raw weights

    from tests.tiny.task import DIM, TinyNet

    net = TinyNet(int(manifest["facts"]["width"])).eval()
    net.load_state_dict(state)
    x = torch.randn(1, DIM, generator=torch.Generator().manual_seed(0))
    (logits,) = onnx_outputs(out / "tiny.onnx", {"x": x.numpy()})
    np.testing.assert_allclose(logits, net(x).detach().numpy(), rtol=1e-5, atol=1e-5)

    # weights=model: the raw weights; an out folder that is not empty is refused, overwrite=true replaces
    (out / "notes.txt").write_text("mine")
    line = _error(_main([f"ckpt={ckpt}", "weights=model"], capsys))
    assert f"out={out}" in line and "not empty" in line
    assert torch.equal(torch.load(out / "tiny.pt", weights_only=True)[next(iter(ema))], ema[next(iter(ema))])
    p = _main([f"ckpt={ckpt}", "weights=model", "overwrite=true"], capsys)
    assert p.returncode == 0, p.stderr
    state = torch.load(out / "tiny.pt", weights_only=True)
    assert all(torch.equal(state[k], stored["model"][k]) for k in state)
    assert (out / "notes.txt").read_text() == "mine" and (out / "tiny.onnx").is_file()  # the earlier ONNX stays
    assert json.loads((out / "export.json").read_text())["source"]["weights"] == "model"


def test_bad_input_is_one_line_naming_the_key_or_file_and_writes_nothing(tiny_run, tmp_path, capsys):
    ckpt = tiny_run / "checkpoints" / "best.pt"
    out = tmp_path / "out"
    cases = {
        (): "ckpt: missing",
        ("ckpt=" + str(tmp_path / "nope.pt"),): f"ckpt={tmp_path / 'nope.pt'}: file not found",
        (f"ckpt={ckpt}", "colour=red"): "colour: unknown key",
        (f"ckpt={ckpt}", "ckpt"): "ckpt: expected key=value",
        (f"ckpt={ckpt}", "imgsz=64"): "imgsz: is the ONNX input size; it needs onnx=true",
        (f"ckpt={ckpt}", "onnx=true", "imgsz=50"): "imgsz=50: must be one number or [height, width], multiples of 32",
        (f"ckpt={ckpt}", "onnx=yes please"): "onnx=yes please: must be true or false",
        (f"ckpt={ckpt}", "weights=best"): "weights=best: must be ema or model",
        (f"ckpt={ckpt}", "model.depth=3"): "model.depth: not a key of the run's config",
    }
    for args, expected in cases.items():
        line = _error(_main([*args, f"out={out}"] if args else [], capsys))
        assert expected in line, (args, line)
    plain = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, plain)
    assert f"ckpt={plain}: not a vsynth checkpoint" in _error(_cli([f"ckpt={plain}", f"out={out}"], tmp_path))
    assert not out.exists() and not [f for f in tmp_path.iterdir() if f.name.startswith(".out")]


def test_a_task_without_an_export_module_is_a_user_error(tiny_run):
    from omegaconf import OmegaConf

    from vsynth.errors import ConfigError
    from vsynth.run.context import RunContext
    from tests.tiny.task import TinyTask

    class Unexportable(TinyTask):  # defined in tests.export.test_cli: there is no tests.export.export
        name = "unexportable"

    cfg = OmegaConf.load(tiny_run / ".hydra" / "config.yaml")
    task = Unexportable(cfg, RunContext(tiny_run, cfg))
    with pytest.raises(ConfigError, match=r"task=unexportable: this task has no export \(tests.export.export not found\)"):
        task.exporter()
    assert TinyTask(cfg, RunContext(tiny_run, cfg)).exporter().__module__ == "tests.tiny.export"
