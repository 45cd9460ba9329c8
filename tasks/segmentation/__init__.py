"""Semantic segmentation with MMSegmentation (PSPNet, DeepLabV3, DeepLabV3+) on vsynth's loop.

``task=segmentation``: real image/label folders mixed per batch with generated images from a
manifest CSV (``arm=ratio``, ``data.ratio``), scored with per-class IoU, mIoU, mAcc and aAcc.
Modules: ``task`` (the Task adapter), ``data`` (sources, checks, mmseg pipelines), ``model``
(the mmseg model dict, ``init=PATH``), ``losses`` (class-weighted CE, OHEM, top-k), ``stats``
(``data_stats.json``), ``draw`` (pictures in ``samples/``).
"""
