"""What a stop signal ends in: a requeued SLURM job, or an interrupted run to rerun.

The trainer turns SIGTERM, SIGUSR1, SIGUSR2 and Ctrl-C into "finish this step, save last.pt, raise
TrainingInterrupted" (``vsynth/train/trainer.py``); :func:`agree_stop` makes every rank of a DDP
job stop at the same step. :func:`after_interrupt` then decides how the process ends:

* A job of ``hydra/launcher=slurm`` (submitit under SLURM) stopped by SIGTERM (preemption,
  ``scontrol requeue``, maintenance) or by submitit's USR2 (the time limit is near,
  ``scancel --signal=USR2``) goes back to the queue: SLURM already requeues it after
  ``scontrol requeue`` and preemption (its restart count is up); otherwise submitit's own handler
  saves the job for its next attempt, runs ``scontrol requeue`` and counts ``max_num_timeout``.
  The process then exits without writing submitit's result file, so the submitting sweep keeps
  waiting while SLURM reruns the job (it resumes from last.pt) and gets the finished attempt's
  result. A SIGTERM that ends the job (``scancel``, or the time limit itself when USR2 came too
  late) is not undone: SLURM would resurrect a cancelled job if asked to requeue it. That job ends
  interrupted (exit code 3), the sweep reports it, and rerunning the sweep resumes it.
* Anything else (no SLURM, USR1, Ctrl-C): exit code 3, status.json ``interrupted``; rerunning the
  command resumes from last.pt. A handler installed before the trainer's (submitit's local
  executor's) is still called, as it was.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from typing import Any, Callable

log = logging.getLogger("vsynth")


def agree_stop(signum: int | None) -> int | None:
    """The stop signal any rank had received, on every rank (one collective per step under DDP).

    Decide on the returned value only: a signal that lands while the collective runs is seen by
    this rank alone and must wait for the next step's agreement.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return signum
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    flag = torch.tensor([signum or 0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None


def _submitit_requeue() -> tuple[int, Callable[..., Any]] | None:
    """submitit's preemption signal and its checkpoint-and-requeue handler, in a job of its SLURM executor."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return None
    from submitit.core.job_environment import JobEnvironment

    usr = JobEnvironment._usr_sig()  # USR2 unless SUBMITIT_PREEMPT_SIGNAL says otherwise
    handler = signal.getsignal(usr)
    if not callable(handler) or getattr(handler, "__name__", "") != "checkpoint_and_try_requeue":
        return None
    return usr, handler


def after_interrupt(signum: int | None, chained: Callable[..., Any] | None = None) -> None:
    """Requeue a preempted SLURM job (does not return), else call ``chained`` and return (exit code 3)."""
    requeue = _submitit_requeue()
    if requeue is not None and signum in (signal.SIGTERM, requeue[0]):
        action = "requeue" if signum == requeue[0] else _after_sigterm()
        if action != "end":
            _leave_to_slurm(requeue if action == "requeue" else None)
    if chained is not None:
        chained(signum, None)


def _after_sigterm() -> str:
    """``slurm`` (SLURM is requeuing this job itself: ``scontrol requeue``, preemption), ``requeue``
    (a SIGTERM to a job still running), or ``end`` (SLURM is ending it: ``scancel``, the time limit)."""
    job = os.environ.get("SLURM_JOB_ID", "")
    try:
        info = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "end"
    fields = dict(f.split("=", 1) for f in info.split() if "=" in f)
    if int(fields.get("Restarts", "0")) > int(os.environ.get("SLURM_RESTART_COUNT", "0")):
        return "slurm"
    return "requeue" if fields.get("JobState") == "RUNNING" else "end"


def _leave_to_slurm(requeue: tuple[int, Callable[..., Any]] | None) -> None:
    """End this process without a submitit result, after requeuing the job if ``requeue`` is given."""
    from vsynth.errors import EXIT_INTERRUPTED
    from vsynth.run.cluster import launch

    job = os.environ.get("SLURM_JOB_ID", "?")
    if launch().rank == 0:  # the other ranks just end: SLURM restarts the whole job
        log.warning("SLURM job %s goes back to the queue; its next attempt resumes from last.pt", job)
        if requeue is not None:
            usr, handler = requeue
            try:
                handler(usr, None)  # submitit: save the job for its next attempt, scontrol requeue, sys.exit
            except subprocess.CalledProcessError as e:
                log.warning("scontrol requeue refused (%s): SLURM is requeuing or ending job %s itself", e, job)
    # no submitit result file: the sweep waits for the next attempt (or sees SLURM end the job)
    raise SystemExit(EXIT_INTERRUPTED)
