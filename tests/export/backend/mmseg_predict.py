"""MMSegmentation's own API on an exported model: ``init_model(config, checkpoint)`` + ``inference_model``."""

from no_vsynth import finish, start

p = start()
import numpy as np  # noqa: E402
from mmseg.apis import inference_model, init_model  # noqa: E402

model = init_model(p["config"], p["checkpoint"], device="cpu")
labels, logits = [], []
for path in p["images"]:
    r = inference_model(model, path)
    labels.append(r.pred_sem_seg.data[0].numpy())
    logits.append(r.seg_logits.data.numpy())
np.savez(p["arrays"], **{f"labels_{i}": a for i, a in enumerate(labels)}, **{f"logits_{i}": a for i, a in enumerate(logits)})
finish(p, {"dataset_meta": {k: list(v) for k, v in model.dataset_meta.items()}, "n": len(labels)})
