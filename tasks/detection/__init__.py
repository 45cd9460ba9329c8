"""Object detection with YOLOX (``pixeltable-yolox``, ``import yolox``), trained by vsynth's common loop.

The package wraps YOLOX thinly: its model (``YoloxModule`` = CSPDarknet + PAFPN + decoupled head,
built at any of YOLOX's sizes), its loss (the head's SimOTA assignment with IoU / objectness /
class / L1 terms, returned by the model in train mode) and its augmentation pipeline
(``MosaicDetection`` with mosaic, mixup and random affine, ``TrainTransform`` with HSV and flip,
multiscale training as YOLOX's trainer does it). Everything else (mixing, the loop with phases,
EMA and AMP, checkpoints, run folders) is vsynth's; scoring is vsynth's COCO box evaluator.

Modules: ``task`` (the :class:`~tasks.detection.task.DetectionTask` adapter), ``data`` (COCO
sources, degenerate-box filtering, YOLOX-style datasets), ``model`` (build / init / load),
``multiscale`` (the deterministic random input size), ``predict`` (inference, NMS, back to image
coordinates), ``draw`` (sample grids). Imported only when the detection task runs.
"""
