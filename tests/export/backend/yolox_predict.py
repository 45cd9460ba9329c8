"""YOLOX's own API on an exported model: the config class beside the .pth, ``Yolox.from_pretrained``, then
YOLOX's demo path (``preproc``, the network, ``postprocess``) on BGR images read by OpenCV."""

import sys

from no_vsynth import finish, start

p = start()
sys.path.insert(0, p["export_dir"])  # where yolox_config.py is, as a user puts it on sys.path
import cv2  # noqa: E402
import torch  # noqa: E402
from yolox.data.data_augment import preproc  # noqa: E402
from yolox.models import Yolox  # noqa: E402
from yolox.utils import postprocess  # noqa: E402
from yolox_config import CLASSES, VsynthYolox  # noqa: E402

cfg = VsynthYolox()
net = Yolox.from_pretrained(p["export_dir"] + "/yolox.pth", config=cfg).module
images = []
for path in p["images"]:
    x, ratio = preproc(cv2.imread(path), cfg.test_size)
    with torch.no_grad():
        out = postprocess(net(torch.from_numpy(x)[None]), cfg.num_classes, p["conf"], cfg.nmsthre)[0]
    out = torch.zeros(0, 7) if out is None else out
    images.append({"file": path, "boxes": (out[:, :4] / ratio).tolist(), "scores": (out[:, 4] * out[:, 5]).tolist(),
                   "classes": out[:, 6].tolist()})
finish(p, {"classes": list(CLASSES), "num_classes": cfg.num_classes, "test_size": list(cfg.test_size),
           "images": images})
