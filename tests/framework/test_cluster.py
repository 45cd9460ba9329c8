"""Which process of a job this is (vsynth/run/cluster.py): torchrun's variables, SLURM's tasks, refusals."""

import json
import os

import pytest

from tests.conftest import run_cli, tiny_args
from vsynth.run import cluster

TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "TORCHELASTIC_RUN_ID")
# what srun exports to task 1 of a 2-node, 1-task-per-node job step
SLURM_TASK_1 = {"SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_LOCALID": "0", "SLURM_NODEID": "1",
                "SLURM_NTASKS": "2", "SLURM_JOB_ID": "1234", "SLURM_JOB_NUM_NODES": "2",
                "SLURM_JOB_NODELIST": "gpu[07-08]"}


@pytest.fixture
def env(monkeypatch):
    """A clean launch environment (no SLURM, no torchrun), re-read on every ``cluster.launch()``."""
    for k in list(os.environ):
        if k.startswith(("SLURM_", "SUBMITIT_")) or k in TORCHRUN:
            monkeypatch.delenv(k)

    def _set(**values):
        for k, v in values.items():
            monkeypatch.setenv(k, v)
        cluster.launch.cache_clear()
        return cluster.launch()

    yield _set
    cluster.launch.cache_clear()


def test_a_plain_process_is_a_world_of_one(env):
    assert env() == cluster.Launch()
    # an sbatch script (or salloc shell) with 2 tasks allocated is still one process: no srun step
    assert env(SLURM_NTASKS="2", SLURM_PROCID="0", SLURM_JOB_ID="7").world_size == 1


def test_slurm_tasks_form_one_process_group(env):
    job = env(**SLURM_TASK_1)
    assert (job.source, job.rank, job.world_size, job.local_rank) == ("slurm", 1, 2, 0)
    assert job.master_addr == "gpu07" and job.master_port == 15000 + 1234 and job.problem is None
    assert job.group_id == "slurm-1234-0"
    assert job.torchrun_env() == {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                                  "MASTER_ADDR": "gpu07", "MASTER_PORT": "16234"}
    requeued = env(SLURM_RESTART_COUNT="1")  # a requeued attempt meets in a fresh rendezvous
    assert requeued.group_id == "slurm-1234-1" and requeued.master_port == 16234


def test_torchrun_variables_win_and_one_torchrun_per_node_is_fine(env):
    job = env(**SLURM_TASK_1, RANK="5", WORLD_SIZE="8", LOCAL_RANK="1", LOCAL_WORLD_SIZE="4", GROUP_WORLD_SIZE="2",
              TORCHELASTIC_RUN_ID="abc")
    assert (job.source, job.rank, job.world_size, job.local_rank, job.group_id) == ("torchrun", 5, 8, 1, "abc")
    assert job.problem is None and job.torchrun_env() == {}


@pytest.mark.parametrize("extra", [{"WORLD_SIZE": "1"},  # two tasks, each a world of one
                                   {"WORLD_SIZE": "2", "GROUP_WORLD_SIZE": "1", "TORCHELASTIC_RUN_ID": "x"}])
def test_several_tasks_each_with_its_own_process_group_are_refused(env, extra):
    job = env(**SLURM_TASK_1, **extra)
    assert job.problem and job.problem.startswith("SLURM started 2 tasks")


def test_cli_refuses_copies_of_one_run_with_one_line(tmp_path):
    env = {"SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "2",
           "SLURM_JOB_ID": "99", "SLURM_JOB_NODELIST": "localhost", "WORLD_SIZE": "1"}
    p = run_cli(tiny_args("trainer.threads=1", "hydra.run.dir=run"), tmp_path, env=env)
    assert p.returncode == 2
    assert p.stderr.startswith("vsynth: error: SLURM started 2 tasks (SLURM_NTASKS)"), p.stderr
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "failed"
