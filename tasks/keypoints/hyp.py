"""ultralytics' hyperparameter namespace, built from vsynth config.

ultralytics reads augmentation strengths and loss gains from one ``IterableSimpleNamespace``
(``ultralytics/cfg/default.yaml``): ``YOLODataset`` takes it as ``hyp`` and ``v8PoseLoss`` reads
``model.args``. We start from ultralytics' own defaults and override only what ``task.augment``
and ``task.loss`` set, with ultralytics' own key names, so a recipe reads the same in both tools.
"""

from __future__ import annotations

from typing import Any, Mapping

from vsynth.errors import ConfigError

#: augmentation keys we pass through (ultralytics names, see ultralytics/cfg/default.yaml)
AUGMENT_KEYS = ("hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "perspective", "flipud",
                "fliplr", "bgr", "mosaic", "mixup", "cutmix")
#: loss gains read by v8PoseLoss through model.args
LOSS_KEYS = ("box", "cls", "dfl", "pose", "kobj")


def _plain(section: Any) -> dict[str, Any]:
    if section is None:
        return {}
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(section):
            return dict(OmegaConf.to_container(section, resolve=True))
    except ImportError:  # pragma: no cover
        pass
    return dict(section)


def build_hyp(task_cfg: Mapping[str, Any], imgsz: int):
    """The ultralytics namespace for ``task_cfg`` (``task.augment``, ``task.loss``)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    overrides: dict[str, Any] = {"task": "pose", "imgsz": int(imgsz), "cache": False, "rect": False,
                                 "single_cls": True, "fraction": 1.0, "close_mosaic": 0}
    for group, keys in (("augment", AUGMENT_KEYS), ("loss", LOSS_KEYS)):
        values = _plain(task_cfg.get(group))
        for k, v in values.items():
            if k not in keys:
                raise ConfigError(f"task.{group}.{k}: unknown key (known: {', '.join(keys)})")
            overrides[k] = v
    try:
        return get_cfg(DEFAULT_CFG, overrides)
    except (SyntaxError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"task.augment/task.loss: ultralytics refused a value ({first})") from e
