"""One run, start to finish: the run folder, the task, training or evaluation, the records.

Called by the Hydra entry point once per run (or per sweep job). User mistakes
(:class:`~vsynth.errors.VsynthError`) end as one line on stderr, exit code 2 and
``status.json`` = failed with the reason; the traceback goes to ``run.log`` only.
"""

from __future__ import annotations

import logging
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vsynth.errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_OK, EXIT_USER_ERROR, ConfigError, VsynthError
from vsynth.run.context import RunContext, command_line_overrides
from vsynth.run.status import Status, read_status

log = logging.getLogger("vsynth")



def _trace_logger() -> logging.Logger:
    """A logger that writes only to run.log's file handler(s): tracebacks stay out of the console."""
    tl = logging.getLogger("vsynth.trace")
    tl.propagate = False
    if not tl.handlers:
        for h in logging.getLogger().handlers:
            if isinstance(h, logging.FileHandler):
                tl.addHandler(h)
    return tl


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _error_line(e: BaseException) -> str:
    """The first line of an error; for one re-raised from a DataLoader worker, the worker's own line."""
    text = str(e).strip()
    if not text:
        return type(e).__name__
    if text.startswith("Caught ") and "Original Traceback" in text:  # torch's worker re-raise
        last = text.splitlines()[-1]
        prefix = f"{type(e).__module__}.{type(e).__name__}: "
        for p in (prefix, f"{type(e).__name__}: "):
            if last.startswith(p):
                return last[len(p):]
    return text.splitlines()[0]


def run_job(cfg: DictConfig, output_dir: Path) -> int:
    """Run one job that Hydra started in ``output_dir``; returns the process exit code.

    The job's records go where :mod:`vsynth.run.placement` decided (``output_dir`` itself, or a
    child/sibling folder when ``output_dir`` holds another run).
    """
    from vsynth.run.cluster import launch
    from vsynth.run.placement import decide, describe
    from vsynth.train.distributed import cleanup, init_distributed

    placement = decide(output_dir, str(cfg.mode), str(cfg.task.name), str(cfg.resume), str(cfg.eval.split))
    run_dir = placement.dir
    is_main = launch().rank == 0
    if not is_main:  # only rank 0 writes run.log; other ranks print warnings and errors only
        root = logging.getLogger()
        for h in list(root.handlers):
            if isinstance(h, logging.FileHandler):
                root.removeHandler(h)
        root.setLevel(logging.WARNING)
    if (line := describe(placement, Path(output_dir))) is not None:  # an evaluation's own child folder is the plan
        (log.info if placement.reason == "eval-child" else log.warning)(line)
    previous = read_status(run_dir)
    drift = []
    if placement.reason == "resume" and cfg.mode == "train":
        drift = _resume_drift(cfg, run_dir)
        if drift and str(cfg.resume) != "force":
            from vsynth.run.drift import describe as describe_drift

            msg = (f"resume: this run folder holds a run started with another configuration ({describe_drift(drift)}); "
                   "rerun with its values, use a new folder (resume=never), or resume=force to continue it anyway "
                   "(the drift is recorded)")
            _trace_logger().error("refused to resume %s: %s", run_dir, msg)
            log.error("refused to resume: %s", msg)
            print(f"vsynth: error: {msg}", file=sys.stderr)
            print(f"Run folder: {run_dir} (unchanged)", file=sys.stderr)
            return EXIT_USER_ERROR
    if previous and previous.get("state") == "done" and cfg.mode == "train" and placement.reason == "resume":
        log.info("This run already finished (status.json: done); nothing to do. Run folder: %s", run_dir)
        print(f"Run folder: {run_dir} (already done)")
        return EXIT_OK
    if is_main:
        from vsynth.run.atomic import remove_stale_temps

        for stale in remove_stale_temps(run_dir):
            log.info("removed %s, a temporary file left by a killed write", stale)
    status = Status(run_dir, enabled=is_main)
    status.start(task=cfg.task.name, arm=cfg.arm.name, mode=cfg.mode, seed=int(cfg.seed), run_dir=str(run_dir),
                 resumed=bool(previous) and placement.reason == "resume")
    if drift:
        from vsynth.run.drift import describe as describe_drift

        log.warning("resume=force: continuing a run whose configuration drifted: %s", describe_drift(drift))
        status.record_drift(drift)
    t0 = time.time()
    code = EXIT_OK
    try:
        from vsynth.paths import configure_offline_backends

        configure_offline_backends()
        weights = None
        if cfg.mode in ("eval", "consistency"):  # a vsynth checkpoint carries its run's config: task, model, data, image size
            from vsynth.train.evaluation import eval_config

            cfg, weights, note = eval_config(cfg, command_line_overrides())
            if note:
                log.info(note)
            status.update(task=str(cfg.task.name), arm=str(cfg.arm.name))
        from vsynth.config.checks import check

        check(cfg)  # types were checked at composition; ranges and stray '+' keys here, before any work
        dist = init_distributed(str(cfg.device))
        _set_threads(cfg.trainer.get("threads"))
        ctx = RunContext(run_dir, cfg, dist.rank, dist.world_size, dist.local_rank)
        if ctx.is_main:
            from vsynth.run.envinfo import write_env

            env_txt = run_dir / "env.txt"  # the first attempt's; a resume's goes beside its config in .hydra/attempts/
            if env_txt.exists() and placement.hydra_subdir and placement.reason == "resume":
                env_txt = Path(output_dir) / placement.hydra_subdir / "env.txt"
            write_env(env_txt, str(dist.device))
            for sub in ("checkpoints", "samples", "tb"):
                (run_dir / sub).mkdir(exist_ok=True)
        seed_everything(int(cfg.seed) + dist.rank)
        log.info("vsynth %s run in %s (task=%s arm=%s mode=%s device=%s world=%d)", cfg.name, run_dir, cfg.task.name,
                 cfg.arm.name, cfg.mode, dist.device, dist.world_size)
        metrics, extra = _execute(cfg, ctx, dist.device, weights)
        if ctx.is_main:
            ctx.write_json("metrics.json", metrics)
            status.finish("done", metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))})
            if not extra.get("report_written"):  # an experiment (kill switch) writes its own report.md
                from vsynth.report.run_report import write_run_report

                write_run_report(ctx, metrics, extra, status.data)
        log.info("Done in %.1fs", time.time() - t0)
    except VsynthError as e:
        _trace_logger().error("user error", exc_info=True)
        status.finish("failed", error=_error_line(e))
        print(f"vsynth: error: {_error_line(e)}", file=sys.stderr)
        print(f"Run folder: {run_dir} (failed; details in run.log)", file=sys.stderr)
        code = EXIT_USER_ERROR
    except KeyboardInterrupt:
        status.finish("interrupted", error="KeyboardInterrupt")
        print(f"vsynth: interrupted; rerun with hydra.run.dir={run_dir} to resume", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001
        from vsynth.train.parts import TrainingInterrupted

        if isinstance(e, TrainingInterrupted):
            status.finish("interrupted", error=_error_line(e))
            print(f"vsynth: {_error_line(e)}; run folder: {run_dir}", file=sys.stderr)
            code = EXIT_INTERRUPTED
            cleanup()
            from vsynth.run.preemption import after_interrupt

            after_interrupt(e.signum, e.chained)  # under SLURM: requeue the job (no return), it resumes from last.pt
        else:
            _trace_logger().error("unexpected error", exc_info=True)
            status.finish("failed", error=f"{type(e).__name__}: {_error_line(e)}")
            traceback.print_exc()
            print(f"vsynth: internal error ({type(e).__name__}); run folder: {run_dir}", file=sys.stderr)
            code = EXIT_BUG
    finally:
        cleanup()
    if code == EXIT_OK and is_main:
        print(f"Run folder: {run_dir}")
    return code


def _resume_drift(cfg: DictConfig, run_dir: Path) -> list:
    """Result-changing keys whose values differ from those the run in ``run_dir`` started with."""
    from vsynth.run.drift import config_drift, original_config

    original = original_config(run_dir)
    return config_drift(original, cfg) if original is not None else []


def _set_threads(threads: Any) -> None:
    """``trainer.threads``: torch's intra-op CPU threads (its default, all cores, spins against other
    processes on a shared machine: measured 5-10x slower there than one thread)."""
    if threads is None:
        return
    try:
        n = int(threads)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ConfigError(f"trainer.threads must be a positive integer or null, got {threads!r}")
    import torch

    torch.set_num_threads(n)
    log.info("trainer.threads=%d: torch uses %d CPU thread(s)", n, n)


#: modes that are experiments of several runs: (their config section, the preset that configures them)
EXPERIMENTS = {"killswitch": ("killswitch", "kill_switch"), "datavalue": ("data_value", "data_value")}


def _execute(cfg: DictConfig, ctx: RunContext, device, weights=None) -> tuple[dict[str, Any], dict[str, Any]]:
    from hydra.utils import get_class, get_method

    if cfg.mode in EXPERIMENTS:  # an experiment of several runs: found by its config section's _target_
        section, preset = EXPERIMENTS[cfg.mode]
        experiment = cfg.get(section)
        if experiment is None or not experiment.get("_target_"):
            raise ConfigError(f"mode={cfg.mode} needs a {section} section (use experiment={preset})")
        return get_method(str(experiment._target_))(cfg, ctx)
    target = cfg.task.get("_target_")
    try:
        task_cls = get_class(target)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"task._target_={target}: cannot import the task class ({_error_line(e)})") from e
    task = task_cls(cfg, ctx)
    task.device = device
    if weights is not None:  # already read for its config: the task does not read the file again
        task.remember_weights(weights, "ckpt")
    if cfg.mode == "train":
        from vsynth.train.trainer import Trainer

        result = Trainer(cfg, task, ctx, device).fit()
        return result.metrics, {"composition": result.composition}
    if cfg.mode == "eval":
        from vsynth.train.evaluation import score_checkpoint

        return score_checkpoint(cfg, task, ctx), {}
    if cfg.mode == "consistency":
        from vsynth.train.evaluation import score_consistency

        return score_consistency(cfg, task, ctx)
    raise ConfigError(f"mode must be train, eval, consistency, killswitch or datavalue, got '{cfg.mode}'")


def config_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
