"""Vehicle keypoints with ultralytics YOLO-pose, trained by vsynth's common loop.

The package wraps ultralytics thinly: its model (``PoseModel`` built from a model YAML or loaded
from a local checkpoint), its pose loss (``v8PoseLoss`` via ``model.loss``) and its augmentation
pipeline (``YOLODataset`` with mosaic, HSV, random affine and a flip that uses ``flip_idx``).
Everything else (mixing, the loop, EMA, checkpoints, run folders) is vsynth's; scoring is
vsynth's keypoint evaluator (OKS-mAP, OKS-mAP@50, PCK).

Modules: ``task`` (the :class:`~tasks.keypoints.task.KeypointsTask` adapter), ``data`` (sources and
splits), ``model`` (build / init / load), ``predict`` (inference, NMS, back to image coordinates),
``flip`` (the flip-map guard), ``draw`` (sample grids), ``hyp`` (ultralytics hyperparameters).
Imported only when the keypoints task runs, so ultralytics never slows other tasks down.
"""
