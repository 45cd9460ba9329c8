"""Prelude of the backend scripts: run by ``python -E -s -S``, so neither PYTHONPATH nor site-packages'
``.pth`` files (the editable vsynth install) apply; the backends' site-packages folders are added by hand.

Imported by the scripts beside it (their folder is ``sys.path[0]``); never imports vsynth or tests.
"""

import importlib.util
import json
import sys


def start() -> dict:
    """The payload (JSON file named by argv[1]), with its site-packages on sys.path; vsynth must be absent."""
    with open(sys.argv[1]) as f:
        payload = json.load(f)
    sys.path.extend(payload["site"])
    payload["importable"] = {m: importlib.util.find_spec(m) is not None for m in ("vsynth", "tasks")}
    return payload


def finish(payload: dict, result: dict) -> None:
    result["importable"] = payload["importable"]
    result["sys_path"] = list(sys.path)
    with open(payload["out"], "w") as f:
        json.dump(result, f)
