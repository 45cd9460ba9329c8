"""Export: a vsynth checkpoint out in its backend's own format (``python -m vsynth.export``).

A kill switch that passes means the model ships, and users deploy with their backend's tools:
``ultralytics.YOLO(path)``, YOLOX's ``.pth`` with its config class, ``mmseg.apis.init_model(config,
checkpoint)``, or ONNX. :mod:`vsynth.export.source` rebuilds the checkpoint's model the way its run
built it; each task's ``tasks/<task>/export.py`` writes its backend's files; :mod:`vsynth.export.bundle`
puts them in place with ``export.json``.
"""
