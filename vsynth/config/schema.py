"""The framework's config schema, declared once: types and keys are checked by Hydra at composition.

Every YAML file in ``conf/`` is merged onto these dataclasses (registered in Hydra's ConfigStore by
:func:`vsynth.config.register`), so ``data.ratio=abc`` or ``trainer.optimizer.lr=abc`` fail before
any work with the key's name, and an unknown key (a typo) is refused instead of silently ignored.
The YAML files keep the values and the comments a user reads; this module keeps the shape. Each
task declares its own keys (``task``, its ``data`` and ``model``) the same way, in its package's
``config.py``. Range checks that a type cannot express live beside the schema, in
:mod:`vsynth.config.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

# ---- top level -------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    split: str = "test"
    batch: int = 16
    workers: int = 0
    max_images: Optional[int] = None
    conf: float = 0.001
    nms: float = 0.65
    max_det: int = 100


@dataclass
class PathsConfig:
    outputs: str = "outputs"
    cache: str = "~/.cache/vsynth"


# ---- trainer ---------------------------------------------------------------------------------------


@dataclass
class PhaseConfig:
    name: str = "train"
    length: Optional[float] = None
    freeze: List[str] = field(default_factory=list)


@dataclass
class OptimizerConfig:
    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    beta2: float = 0.999
    nesterov: bool = True
    weight_decay: float = 0.0005
    fused: bool = False


@dataclass
class ScheduleConfig:
    warmup: float = 1.0
    warmup_factor: float = 0.001
    min_lr: Optional[float] = None
    final_lr_ratio: float = 0.05


@dataclass
class EmaConfig:
    enabled: bool = True
    decay: float = 0.9999
    tau: float = 2000.0


@dataclass
class ValConfig:
    interval: float = 1.0
    metric: Optional[str] = None
    mode: str = "max"


@dataclass
class CheckpointConfig:
    every: Optional[float] = None
    phase_snapshots: bool = True


@dataclass
class TrainerConfig:
    unit: str = "epoch"
    length: float = 10.0
    batch_size: int = 16
    workers: int = 2
    threads: Optional[int] = None
    phases: List[PhaseConfig] = field(default_factory=lambda: [PhaseConfig()])
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    amp: str = "auto"
    ema: EmaConfig = field(default_factory=EmaConfig)
    clip_grad_norm: Optional[float] = None
    val: ValConfig = field(default_factory=ValConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log_interval: int = 10
    progress_bar: Any = "auto"  # auto | true | false
    tensorboard: bool = True
    stop_at_step: Optional[int] = None
    pin_memory: Any = "auto"  # auto | true | false (vsynth/train/speed.py)
    persistent_workers: Any = "auto"
    cudnn_benchmark: Any = "auto"
    channels_last: Any = "auto"
    compile: Any = False  # false | true | a torch.compile mode name


# ---- arm -------------------------------------------------------------------------------------------


@dataclass
class ArmSourceConfig:
    subset: Optional[int] = None
    factor: float = 1.0


@dataclass
class ArmConfig:
    name: str = "arm"
    description: str = ""
    eval_domain: Optional[str] = None
    sources: Dict[str, ArmSourceConfig] = field(default_factory=dict)


# ---- data (the keys every task's data config has) ----------------------------------------------------


@dataclass
class DemoConfig:
    """``data.demo``, the same spelling for every task (see ``vsynth/data/demo/settings.py``)."""

    enabled: bool = False
    seed: int = 0
    image_size: List[int] = field(default_factory=lambda: [320, 240])
    # {domain: {split: images}}; a domain left null is not generated (all null: the default counts);
    # checked by vsynth/data/demo/settings.py
    counts: Dict[str, Any] = field(default_factory=lambda: {"real": None, "synthetic": None, "generated": None})
    effects: Optional[Dict[str, Any]] = None  # checked by vsynth/data/demo/effects.py (names the sub-key)


@dataclass
class DataConfig:
    name: str = "data"
    demo: DemoConfig = field(default_factory=DemoConfig)
    real_subset: Optional[int] = None
    subset_seed: int = 0
    ratio: Optional[float] = None
    batches_per_epoch: Optional[int] = None


@dataclass
class SampleGrids:
    """``task.samples`` of the tasks that draw boxes or keypoints: pictures in the run folder's samples/."""

    per_source: int = 8
    predictions: int = 8
    score: float = 0.25


# ---- experiments --------------------------------------------------------------------------------------


@dataclass
class KillSwitchBaseConfig:
    arm: str = "base"
    ckpt: Optional[str] = None
    run: Optional[str] = None
    # {metric: number} or null; Any because OmegaConf cannot assign a dict override to a null typed dict
    # (checked by vsynth/experiments/killswitch.py)
    metrics: Any = None
    overrides: List[str] = field(default_factory=list)


@dataclass
class BootstrapConfig:
    samples: int = 1000
    seed: int = 0
    level: float = 0.95


@dataclass
class KillSwitchConfig:
    _target_: str = "vsynth.experiments.killswitch.run_killswitch"
    control: Any = "B"  # an arm name, or {arm: NAME, label: LABEL, overrides: [...]}
    treatment: Any = "A"
    seeds: List[int] = field(default_factory=lambda: [0])
    margin: float = 0.02
    metric: str = "oks_map"
    metrics: List[str] = field(default_factory=lambda: ["oks_map"])  # the kill_switch preset: the task's headline
    split: str = "test"
    base: KillSwitchBaseConfig = field(default_factory=KillSwitchBaseConfig)
    reuse: Dict[str, Any] = field(default_factory=dict)
    overrides: List[str] = field(default_factory=list)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    sigmas: Optional[List[float]] = None
    title: str = "Kill switch"


@dataclass
class DataValueConfig:
    """``experiment=data_value`` (vsynth/experiments/data_value.py); the preset's comments say what each key does."""

    _target_: str = "vsynth.experiments.data_value.run_data_value"
    sizes: List[Any] = field(default_factory=lambda: [8, 20, 50, "all"])  # numbers of real frames, or all
    seeds: List[int] = field(default_factory=lambda: [0, 1])
    split: str = "test"
    mode: str = "max"
    metric: Optional[str] = None
    size_key: Optional[str] = None
    real_only: Any = None  # an arm name, or {arm: NAME, label: LABEL, overrides: [...]}
    with_extra: Any = None
    tasks: Dict[str, Any] = field(default_factory=dict)
    overrides: List[str] = field(default_factory=list)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    sigmas: Optional[List[float]] = None
    title: str = "What the extra data is worth in real frames"


# ---- the whole config ------------------------------------------------------------------------------


@dataclass
class VsynthConfig:
    """The top level. ``task``, ``data`` and ``model`` are typed by the chosen task's own schema."""

    seed: int = 0
    mode: str = "train"
    init: Optional[str] = None
    ckpt: Optional[str] = None
    trust_checkpoint: bool = False
    resume: str = "auto"
    device: str = "auto"
    name: str = "run"
    eval: EvalConfig = field(default_factory=EvalConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    arm: ArmConfig = field(default_factory=ArmConfig)
    data: Any = None
    model: Any = None
    task: Any = None
    killswitch: Optional[KillSwitchConfig] = None
    data_value: Optional[DataValueConfig] = None
