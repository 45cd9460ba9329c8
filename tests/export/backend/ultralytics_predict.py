"""ultralytics' own API on an exported model: ``YOLO(path).predict(images)`` (a .pt or an .onnx)."""

from no_vsynth import finish, start

p = start()
from ultralytics import YOLO  # noqa: E402

model = YOLO(p["model"], task="pose")
images = []
for r in model.predict(p["images"], imgsz=p["imgsz"], conf=p["conf"], iou=p["iou"], max_det=p["max_det"],
                       rect=False, device="cpu", verbose=False):  # rect=False: the square letterbox of evaluation
    images.append({"file": r.path, "boxes": r.boxes.xyxy.tolist(), "scores": r.boxes.conf.tolist(),
                   "classes": r.boxes.cls.tolist(), "keypoints": r.keypoints.data.tolist()})
finish(p, {"names": {str(k): v for k, v in model.names.items()}, "task": model.task, "images": images})
