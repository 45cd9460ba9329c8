"""Run many ``python -m vsynth`` commands quickly: import everything once, then fork one child per command.

Usage: ``python tests/trust/zygote.py CASES.json RESULTS.json``. CASES is a list of
``{"id", "args", "cwd", "env"}``; each child chdirs to ``cwd``, updates its environment, runs
vsynth's real entry point (``vsynth.__main__.main``) with ``args`` and writes its stdout and stderr
to ``<cwd>/stdout.txt`` / ``stderr.txt``. RESULTS gets ``{id: exit code}``. A forked child is a
fresh process for everything vsynth does (signals, logging, Hydra's state, the run folder); only the
imports are shared, which is what makes a catalogue of dozens of commands take a minute, not ten.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def _child(case: dict) -> int:
    os.chdir(case["cwd"])
    os.environ.update(case.get("env") or {})
    out = os.open(os.path.join(case["cwd"], "stdout.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(os.path.join(case["cwd"], "stderr.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.argv = ["vsynth", *case["args"]]
    import vsynth.__main__ as entry

    try:
        entry.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001  (what the real interpreter would print)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def main() -> None:
    cases = json.loads(open(sys.argv[1]).read())
    # what vsynth sets before importing backends (paths.configure_offline_backends), then the heavy imports
    os.environ.update(cases[0].get("env") or {})
    from vsynth.paths import configure_offline_backends

    configure_offline_backends()
    import torch  # noqa: F401
    import ultralytics  # noqa: F401
    import mmseg  # noqa: F401
    import yolox  # noqa: F401

    import vsynth.__main__  # noqa: F401
    import vsynth.app  # noqa: F401

    results = {}
    for case in cases:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os._exit(_child(case))
        _, status = os.waitpid(pid, 0)
        results[case["id"]] = os.waitstatus_to_exitcode(status)
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
