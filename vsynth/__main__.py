"""``python -m vsynth ...``: the one Hydra entry point.

Kept light on purpose: only Hydra/OmegaConf are imported here; torch and every backend load when a
run actually starts, so ``--help`` and ``--cfg job`` answer quickly.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from vsynth.config.errors import JobFailed
from vsynth.paths import conf_dir
from vsynth.run.dirs import register_resolvers

register_resolvers()

_exit_code = [0]


def task_function(cfg: DictConfig) -> int:
    """One job, as Hydra (and any launcher: basic, submitit local or SLURM) runs it."""
    from pathlib import Path

    from vsynth.app import run_job

    hc = HydraConfig.get()
    code = run_job(cfg, Path(hc.runtime.output_dir))
    if hc.mode == RunMode.MULTIRUN and code != 0:
        raise JobFailed(f"sweep job {hc.job.num} failed (exit code {code}): {hc.runtime.output_dir}", code)
    return code


@hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> int:
    code = task_function(cfg)
    _exit_code[0] = max(_exit_code[0], code)
    return code


def _eval_groups(argv: list[str]) -> list[str]:
    """``mode=eval ckpt=PATH`` with a vsynth checkpoint: the config groups of the run that wrote it.

    Hydra composes before vsynth runs; composing the checkpoint's own task, data and arm groups (unless the
    command line names them) means ``python -m vsynth mode=eval ckpt=PATH data.real.test.coco=...`` works
    for any task without ``task=``. The checkpoint is only peeked at here (memory-mapped, plain data).
    """
    pairs = dict(a.lstrip("+~").split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    if pairs.get("mode") != "eval" or not pairs.get("ckpt") or "experiment" in pairs:
        return []
    from omegaconf import OmegaConf

    from vsynth.train.checkpoint import run_config

    text = run_config(pairs["ckpt"])
    if text is None:
        return []
    stored = OmegaConf.create(text)
    out = []
    for group in ("task", "data", "arm"):
        name = OmegaConf.select(stored, f"{group}.name")
        if group not in pairs and name and (conf_dir() / group / f"{name}.yaml").is_file():
            out.append(f"{group}={name}")
    return out


def _help() -> str:
    """``--help``: the help page of conf/hydra/help/vsynth.yaml with the config groups listed from conf/.

    Hydra's own listing composes the config a hundred times and would show the schema groups
    (``vsynth/...``) too; this one reads the folders.
    """
    from omegaconf import OmegaConf

    page = OmegaConf.load(conf_dir() / "hydra" / "help" / "vsynth.yaml")
    groups = []
    for group in ("arm", "data", "experiment", "model", "task", "trainer", "hydra/launcher"):
        options = sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))
        if group == "hydra/launcher":
            options = sorted({"basic", *options})
        groups.append(f"{group}: {', '.join(options)}")
    raw = OmegaConf.to_container(page, resolve=False)
    text = str(raw["template"]).replace("${hydra.help.header}", str(raw["header"]))
    text = text.replace("${hydra.help.footer}", str(raw["footer"]))
    return text.replace("$APP_CONFIG_GROUPS", "\n".join(groups) + "\n")


def main() -> None:
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(_help())
        sys.exit(0)
    from vsynth.config.errors import install

    install()  # Hydra's composition errors: one line naming the key, exit code 2
    sys.argv[1:1] = _eval_groups(sys.argv[1:])
    _hydra_main()
    sys.exit(_exit_code[0])


if __name__ == "__main__":
    main()
