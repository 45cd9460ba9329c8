"""Which process of a multi-process job this one is, whoever started the processes.

A job started as several processes must train as one DDP process group, never as N independent
copies writing one run folder. Two things start such processes, and this module is the one place
that reads them (the run-folder resolver in ``vsynth/run/dirs.py`` and ``init_distributed`` in
``vsynth/train/distributed.py`` both ask :func:`launch`):

* ``torchrun`` (on its own or inside an sbatch script): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT``. Its variables always win.
* SLURM's tasks: ``srun`` (and submitit, which runs every job of ``hydra/launcher=slurm`` through
  srun) starts ``nodes x tasks_per_node`` copies of the command. Rank, local rank and world size
  come from submitit's view of the job (``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NTASKS``), the
  master is the job's first node (``SLURM_JOB_NODELIST``; 127.0.0.1 for a one-node job) and the
  port is derived from the job id, so every task finds the same address without talking to the
  others. submitit's local executor (``hydra/launcher=local`` with ``tasks_per_node`` > 1) is read
  the same way.

Several SLURM tasks that each start their own process group (``srun -n2 torchrun --standalone``,
or ``WORLD_SIZE=1`` under a 2-task step) would be copies of one run in one folder: refused.
"""

from __future__ import annotations

import functools
import os
import zlib
from dataclasses import dataclass

_PORT_BASE, _PORT_SPAN = 15000, 15000  # below Linux's ephemeral ports (32768+)


@dataclass(frozen=True)
class Launch:
    """This process's place in its job; ``source`` says who started it (single, torchrun, slurm, local)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    source: str = "single"
    local_world_size: int = 1
    master_addr: str | None = None
    master_port: int | None = None
    group_id: str | None = None  # the same in every process of this attempt: the run-folder rendezvous key
    problem: str | None = None  # why this launch must not train (several copies of one run)

    def torchrun_env(self) -> dict[str, str]:
        """torchrun's variables for this process (what ``init_process_group`` and backends read)."""
        if self.world_size <= 1 or self.source == "torchrun":
            return {}
        return {"RANK": str(self.rank), "WORLD_SIZE": str(self.world_size), "LOCAL_RANK": str(self.local_rank),
                "LOCAL_WORLD_SIZE": str(self.local_world_size),
                "MASTER_ADDR": os.environ.get("MASTER_ADDR") or str(self.master_addr),
                "MASTER_PORT": os.environ.get("MASTER_PORT") or str(self.master_port)}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _scheduler_job():
    """submitit's job environment when SLURM (or submitit's local executor) started this process as a task."""
    if os.environ.get("SUBMITIT_EXECUTOR") == "local" and "SUBMITIT_LOCAL_GLOBALID" in os.environ:
        from submitit.local.local import LocalJobEnvironment

        return LocalJobEnvironment()
    if "SLURM_STEP_ID" in os.environ and "SLURM_PROCID" in os.environ:  # a task of an srun step, not the batch shell
        from submitit.slurm.slurm import SlurmJobEnvironment

        return SlurmJobEnvironment()
    return None


def _port(job_id: str) -> int:
    key = int(job_id) if job_id.isdigit() else zlib.crc32(job_id.encode())
    return _PORT_BASE + key % _PORT_SPAN


def _from_torchrun(tasks: int) -> Launch:
    world = _int("WORLD_SIZE", 1)
    groups = _int("GROUP_WORLD_SIZE", world)  # torchrun agents (one per node) sharing this process group
    problem = None
    if tasks > 1 and groups != tasks:
        problem = (f"SLURM started {tasks} tasks (SLURM_NTASKS) that each run their own process group of "
                   f"WORLD_SIZE={world}: {tasks} copies of one run in one folder. Use one task per node "
                   "(hydra.launcher.tasks_per_node=1) with torchrun --nnodes, or no torchrun: vsynth trains "
                   "SLURM's tasks as one process group")
    return Launch(_int("RANK", 0), world, _int("LOCAL_RANK", 0), "torchrun", _int("LOCAL_WORLD_SIZE", world),
                  os.environ.get("MASTER_ADDR"), _int("MASTER_PORT", 0) or None,
                  os.environ.get("TORCHELASTIC_RUN_ID"), problem)


@functools.lru_cache(maxsize=1)
def launch() -> Launch:
    """This process's rank, world and master, read once from the environment it was started in."""
    job = _scheduler_job()
    tasks = job.num_tasks if job is not None else 1
    if "WORLD_SIZE" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ:
        return _from_torchrun(tasks)
    if tasks <= 1:
        return Launch()
    source = "local" if job.name() == "local" else "slurm"
    nodes = max(1, job.num_nodes)
    master = job.hostnames[0] if nodes > 1 else "127.0.0.1"  # one node: no name to resolve
    attempt = os.environ.get("SLURM_RESTART_COUNT", "0")  # a requeued job is a new rendezvous
    return Launch(job.global_rank, tasks, job.local_rank, source, max(1, tasks // nodes), master,
                  _port(job.raw_job_id), f"{source}-{job.job_id}-{attempt}")
