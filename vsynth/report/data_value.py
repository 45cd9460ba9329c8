"""What the extra data is worth in real frames: learning curves with and without it, and the gap between them.

The experiment (:mod:`vsynth.experiments.data_value`) trains, for every real-subset size and seed,
a *real-only* arm and a *with-extra* arm (the same real subset plus the synthetic or generated
source). This module turns their test results into the answer:

1. the real-only learning curve, metric vs number of real frames, fitted by a monotone saturating
   power law (:mod:`vsynth.report.learning_curve`, which says why that form);
2. at each size n, the with-extra metric y is read off the fitted real-only curve: the real-only
   model would need n_eff frames to score y, and the extra data is **worth n_eff - n real frames**
   (the "effective data transferred" of the transfer-scaling literature). Negative: the extra data
   hurts, it is *worth less than nothing*. Above the fitted curve at the largest real-only size:
   *beyond the measured range* (worth more than n_max - n; never extrapolated). Below it at the
   smallest size: worth less than n_min - n;
3. the interval: a two-level bootstrap (:mod:`vsynth.report.uncertainty`): each resample draws every
   cell's seeds with replacement and one set of test images shared by every run, re-scores every
   run on those images from its per-image evaluator state, refits the real-only curve and recomputes
   every worth; the interval is the resamples' percentile interval. As the kill switch's t interval
   does (two or three seeds estimate training noise poorly), each resampled mean's deviation from its
   estimate is widened by t/z, t at the Welch-Satterthwaite degrees of freedom of that size's
   with-extra vs real-only difference. A bound past the measured range is open ("below" / "beyond").
   Runs without per-image test files are resampled over seeds only. A real-only curve that does not
   rise at all (a flat fit) cannot price anything in frames: status ``flat``.

Outputs: ``data_value.json`` (stable keys, see :func:`analyze`), ``report.md`` and
``data_value.png`` (both curves, the horizontal gaps marked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vsynth.errors import ConfigError, DataError
from vsynth.report.learning_curve import PowerLaw, fit_power_law
from vsynth.report.power import t_quantile
from vsynth.report.uncertainty import difference, resample_groups, seed_means, streams

REAL_ONLY, WITH_EXTRA = "real_only", "with_extra"
ROLES = (REAL_ONLY, WITH_EXTRA)
MEASURED, BEYOND, BELOW, FLAT = "measured", "beyond", "below", "flat"


@dataclass
class Cell:
    """The runs of one arm at one real-subset size, one per seed.

    ``values``: the metric per seed (from ``metrics.json``); ``states``: per-image evaluator
    states per seed (:func:`vsynth.report.run_states.run_state`), or None when the runs kept no
    per-image test files (then only seeds are resampled).
    """

    role: str
    label: str
    frames: int
    values: list[float]
    states: list[Any] | None = None
    seeds: list[int] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def _sizes(cells: Sequence[Cell]) -> list[tuple[str, int, Cell, Cell]]:
    """(label, frames, real-only cell, with-extra cell) per size, by frames; DataError when one is missing."""
    by: dict[tuple[str, int], dict[str, Cell]] = {}
    for c in cells:
        if c.role not in ROLES:
            raise ConfigError(f"data value: unknown arm role {c.role!r} (expected {' or '.join(ROLES)})")
        if not c.values:
            raise DataError(f"data value: no runs for {c.role} at {c.label} real frames")
        by.setdefault((c.label, int(c.frames)), {})[c.role] = c
    out = []
    for (label, frames), roles in sorted(by.items(), key=lambda kv: kv[0][1]):
        missing = [r for r in ROLES if r not in roles]
        if missing:
            raise DataError(f"data value: no {missing[0]} runs at size {label}")
        out.append((label, frames, roles[REAL_ONLY], roles[WITH_EXTRA]))
    frames = [f for _, f, _, _ in out]
    if len(set(frames)) != len(frames):
        dup = sorted({f for f in frames if frames.count(f) > 1})[0]
        raise ConfigError(f"data_value.sizes: two sizes train on the same {dup} real frames "
                          f"({', '.join(lab for lab, f, _, _ in out if f == dup)})")
    return out


def analyze(cells: Sequence[Cell], *, metric: str, mode: str = "max", samples: int = 1000, seed: int = 0,
            level: float = 0.95) -> dict[str, Any]:
    """The worth of the extra data in real frames at every size, with intervals (what data_value.json holds).

    Keys: ``metric``, ``mode``, ``level``, ``samples``, ``per_image`` (bool), ``num_images``,
    ``fit`` (``model``, ``a``, ``b``, ``c``, ``rmse``, ``range``), ``points`` (one per size:
    ``size``, ``real_frames``, ``real_only`` / ``with_extra`` (``mean``, ``std``, ``values``,
    ``seeds``, ``runs``), ``fitted_real_only``, ``delta`` (with-extra minus real-only at that
    size, :func:`vsynth.report.uncertainty.difference`), ``worth`` (``frames``, ``low``, ``high``:
    real frames, null when not a number; ``low_censored``/``high_censored``: null, ``beyond`` or
    ``below`` the measured range; ``effective_frames``; ``status``: measured | beyond | below | flat;
    ``bound``: for a censored estimate, the frames it is more (beyond) or less (below) than;
    ``share_beyond``/``share_below`` of the resamples; ``answer``: one sentence)) and ``notes``.
    """
    if mode not in ("max", "min"):
        raise ConfigError(f"data_value.mode: expected max (higher is better) or min, got {mode!r}")
    sizes = _sizes(cells)
    if len(sizes) < 3:
        raise ConfigError(f"data_value.sizes: the real-only curve needs at least three sizes, got {len(sizes)}")
    groups = [c for _, _, r, e in sizes for c in (r, e)]
    per_image = all(c.states is not None for c in groups)
    rng_images, rng_seeds = streams(seed)
    if per_image:
        full, values, n_images = resample_groups([c.states for c in groups],
                                                 [f"{c.role} at {c.label}" for c in groups], metric=metric,
                                                 samples=samples, rng_images=rng_images)
    else:
        full = [np.asarray(c.values, dtype=np.float64) for c in groups]
        values = [np.repeat(f[:, None], int(samples), axis=1) for f in full]
        n_images = None
    sign = 1.0 if mode == "max" else -1.0
    deltas = []
    for i in range(len(sizes)):
        delta = difference(full[2 * i + 1], full[2 * i], values[2 * i + 1], values[2 * i], n_images or 1,
                           rng_seeds=np.random.default_rng([int(seed), 2, i]), metric=metric, level=level,
                           gate=None, names=(WITH_EXTRA, REAL_ONLY))
        if n_images is None:
            delta["num_images"] = None
        if mode == "min":
            delta["lower_is_better"] = True
        deltas.append(delta)
    means_full = np.array([f.mean() for f in full])
    means_r = np.array([seed_means(v, rng_seeds) for v in values])  # (2K, R)
    widen = np.repeat([_widening(d.get("df"), level) for d in deltas], 2)  # both cells of a size: its t / z
    means_r = means_full[:, None] + widen[:, None] * (means_r - means_full[:, None])
    frames = np.array([f for _, f, _, _ in sizes], dtype=np.float64)
    real_full, extra_full = means_full[0::2], means_full[1::2]
    real_r, extra_r = means_r[0::2].T, means_r[1::2].T  # (R, K)
    fit = fit_power_law(frames, sign * real_full)
    fits = fit_power_law(frames, sign * real_r)
    points = []
    for i, (label, n, real, extra) in enumerate(sizes):
        eff = float(fit.invert(np.array([sign * extra_full[i]]))[0])
        worth = _worth(eff, fits.invert(sign * extra_r[:, i]), n, fit, level, deltas[i])
        points.append({
            "size": label,
            "real_frames": int(n),
            REAL_ONLY: _arm(real, full[2 * i]),
            WITH_EXTRA: _arm(extra, full[2 * i + 1]),
            "fitted_real_only": float(sign * fit(float(n))[0]),
            "delta": deltas[i],
            "worth": worth,
        })
    result = {
        "metric": metric,
        "mode": mode,
        "level": level,
        "samples": int(values[0].shape[1]),
        "per_image": per_image,
        "num_images": n_images,
        "fit": {"model": "saturating power law: metric = a - b * frames^(-c), b >= 0" if mode == "max" else
                "saturating power law: -metric = a - b * frames^(-c), b >= 0 (lower is better)",
                **fit.params(), "range": [fit.n_min, fit.n_max]},
        "points": points,
    }
    result["notes"] = _notes(result, [np.asarray(v) for v in full[0::2]], per_image)
    return result


def _arm(cell: Cell, full: np.ndarray) -> dict[str, Any]:
    return {"mean": float(full.mean()), "std": float(full.std(ddof=1)) if full.size > 1 else 0.0,
            "values": [float(v) for v in full], "seeds": list(cell.seeds), "runs": list(cell.runs)}


def _widening(df: float | None, level: float) -> float:
    """t / z at the interval's level: how much wider a t interval with ``df`` degrees of freedom is."""
    from scipy import stats

    q = 0.5 + level / 2
    return t_quantile(q, math.inf if df is None else df) / float(stats.norm.ppf(q))


def _worth(eff: float, eff_r: np.ndarray, n: float, fit: PowerLaw, level: float,
           delta: dict[str, Any]) -> dict[str, Any]:
    """Point estimate, interval and wording of the worth at one size (frames = effective frames - n)."""
    worth_r = eff_r - n
    low, high = (float(np.quantile(worth_r, q, method="inverted_cdf")) for q in ((1 - level) / 2, (1 + level) / 2))
    if fit.b[0] == 0:
        status = FLAT
    else:
        status = MEASURED if math.isfinite(eff) else (BEYOND if eff > 0 else BELOW)
    out = {
        "frames": eff - n if status == MEASURED else None,
        "low": low if math.isfinite(low) else None,
        "high": high if math.isfinite(high) else None,
        "low_censored": _censored(low),
        "high_censored": _censored(high),
        "effective_frames": eff if status == MEASURED else None,
        "status": status,
        "bound": {BEYOND: fit.n_max - n, BELOW: fit.n_min - n}.get(status),
        "share_beyond": float(np.mean(np.isposinf(eff_r))),
        "share_below": float(np.mean(np.isneginf(eff_r))),
    }
    out["answer"] = answer(out, delta)
    return out


def _censored(bound: float) -> str | None:
    """None for a finite bound; ``beyond`` / ``below`` (the measured range) for +inf / -inf."""
    return None if math.isfinite(bound) else (BEYOND if bound > 0 else BELOW)


def _frames(x: float) -> str:
    return f"{x:+.0f}" if abs(x) >= 10 else f"{x:+.1f}"


def interval_text(w: dict[str, Any]) -> str:
    """``[low, high]`` in frames, a censored bound said in words."""
    lo, hi = (f"{w[f'{k}_censored']} the measured range" if w[f"{k}_censored"] else _frames(w[k]) for k in ("low", "high"))
    return f"[{lo}, {hi}]"


def answer(w: dict[str, Any], delta: dict[str, Any] | None = None) -> str:
    """One sentence: what the extra data is worth at this size (``delta``: the with-extra minus real-only
    difference at that size, for a flat real-only curve, which cannot price anything in frames)."""
    status, frames = w["status"], w["frames"]
    if status == FLAT:
        text = "not priced in frames: the real-only curve does not rise over the measured sizes"
        if delta and delta.get("high") is not None and delta["high"] < 0 and not delta.get("lower_is_better"):
            text += "; with the extra data the model scores lower at this size: worth less than nothing"
        elif delta and delta.get("low") is not None and delta["low"] > 0 and delta.get("lower_is_better"):
            text += "; with the extra data the model scores worse at this size: worth less than nothing"
        return text
    if status == BEYOND:
        text = (f"beyond the measured range: with the extra data the model scores above the real-only curve at its "
                f"largest size, so it is worth more than {w['bound']:.0f} real frames")
    elif status == BELOW or frames < 0:
        text = "worth less than nothing: the extra data hurts"
        if status == BELOW:
            text += f" (the model scores below the real-only curve at its smallest size: worth < {w['bound']:.0f} frames)"
        else:
            text += f" ({_frames(frames)} real frames)"
    else:
        text = f"worth about {frames:.0f} real frames" if frames >= 10 else f"worth about {frames:.1f} real frames"
    low = {BELOW: -math.inf, BEYOND: math.inf}.get(w["low_censored"], w["low"])
    high = {BELOW: -math.inf, BEYOND: math.inf}.get(w["high_censored"], w["high"])
    if low <= 0 <= high:
        text += "; the interval includes 0: not distinguishable from worthless"
    return text


def _notes(result: dict[str, Any], real_values: list[np.ndarray], per_image: bool) -> list[str]:
    notes = []
    if not per_image:
        notes.append("Some runs kept no per-image test files: the intervals resample seeds only (test-image noise is "
                     "not in them).")
    if all(v.size < 2 for v in real_values):
        notes.append("One seed per size: training noise is unmeasured, and two retrainings can differ by more than "
                     "these intervals. Run >= 2 seeds.")
    fit = result["fit"]
    if fit["b"] == 0:
        notes.append("The real-only metric does not rise with more real frames over the measured sizes: the fitted "
                      "curve is flat and cannot price the extra data in frames.")
    ses = [float(np.std(v, ddof=1) / math.sqrt(v.size)) for v in real_values if v.size > 1]
    if ses and fit["rmse"] > 2 * float(np.median(ses)):
        notes.append(f"The power law misses the real-only means by {fit['rmse']:.4g} (root mean square), more than "
                     f"twice their typical seed standard error ({float(np.median(ses)):.2g}): the curve's shape is "
                     "uncertain, read the worth with care.")
    lo, hi = fit["range"]
    notes.append(f"Worth is read off the fitted real-only curve between {lo:.0f} and {hi:.0f} real frames only; "
                 "outside that range it is reported as a bound (beyond / below the measured range), never "
                 "extrapolated.")
    return notes


# ---- outputs ---------------------------------------------------------------------------------

def flat_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The experiment's metrics.json: per size, both arms' means and the worth with its bounds."""
    out: dict[str, Any] = {}
    for p in result["points"]:
        key = f"data_value/{p['size']}"
        out[f"{key}/real_frames"] = p["real_frames"]
        out[f"{key}/{REAL_ONLY}"] = p[REAL_ONLY]["mean"]
        out[f"{key}/{WITH_EXTRA}"] = p[WITH_EXTRA]["mean"]
        w = p["worth"]
        out[f"{key}/worth_status"] = w["status"]
        for k in ("frames", "low", "high"):
            if w[k] is not None:
                out[f"{key}/worth_{k}"] = w[k]
    return out


def render_report(result: dict[str, Any], title: str, arms: dict[str, str], png: str | None) -> str:
    """The experiment root's report.md."""
    metric = result["metric"]
    lines = [f"# {title}", "",
             f"Question: how many real frames is the extra data worth? Arm **{REAL_ONLY}** ({arms.get(REAL_ONLY, '')}) "
             f"trains on a real subset of each size; arm **{WITH_EXTRA}** ({arms.get(WITH_EXTRA, '')}) on the same "
             "subset plus the extra source. The real-only curve is fitted; at each size the with-extra metric is read "
             "off it: the real frames a real-only model would need to score as well, minus the frames it had.", ""]
    if png:
        lines += [f"![{metric} vs real frames]({png})", ""]
    lines += [f"| size | real frames | {REAL_ONLY} {metric} | {WITH_EXTRA} {metric} | Δ (with - real) [{result['level']:.0%}] "
              f"| worth in real frames [{result['level']:.0%}] | answer |", "|---|---|---|---|---|---|---|"]
    for p in result["points"]:
        d, w = p["delta"], p["worth"]
        worth = _frames(w["frames"]) if w["status"] == MEASURED else w["status"]
        lines.append(f"| {p['size']} | {p['real_frames']} | {_mean_sd(p[REAL_ONLY])} | {_mean_sd(p[WITH_EXTRA])} | "
                     f"{d['delta']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | {worth} {interval_text(w)} | "
                     f"{w['answer']} |")
    fit = result["fit"]
    seeds = sorted({len(p[r]["values"]) for p in result["points"] for r in ROLES})
    lines += ["", "## How it was computed", "",
              f"- Real-only fit: {fit['model']}, a = {fit['a']:.4g}, b = {fit['b']:.4g}, c = {fit['c']:.3g} "
              f"(root-mean-square residual {fit['rmse']:.3g}), over {fit['range'][0]:.0f}-{fit['range'][1]:.0f} real frames.",
              f"- Intervals: {result['samples']} two-level bootstrap resamples: "
              f"{'/'.join(map(str, seeds))} seed(s) per arm and size drawn with replacement"
              + (f", and {result['num_images']} shared test images" if result["per_image"] else " (seeds only)")
              + "; every run re-scored, the real-only curve refitted and every worth recomputed; percentile intervals, "
                "each resampled mean's deviation widened by t/z at the Welch-Satterthwaite degrees of freedom of its "
                "size's difference.",
              ""]
    if result["notes"]:
        lines += ["## Read with care", ""] + [f"- {n}" for n in result["notes"]] + [""]
    lines += ["## Run folders", ""]
    for p in result["points"]:
        for role in ROLES:
            lines += [f"- {p['size']} {role}: " + ", ".join(f"`{r}`" for r in p[role]["runs"])]
    return "\n".join(lines + [""])


def _mean_sd(arm: dict[str, Any]) -> str:
    return f"{arm['mean']:.4f} ± {arm['std']:.4f}" if len(arm["values"]) > 1 else f"{arm['mean']:.4f}"


def plot(result: dict[str, Any], out: Path) -> None:
    """Both curves against real frames (log axis), the fitted real-only curve, the horizontal gaps marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vsynth.run.atomic import atomic_write

    pts = result["points"]
    fit = result["fit"]
    sign = 1.0 if result["mode"] == "max" else -1.0
    x = np.array([p["real_frames"] for p in pts], dtype=float)
    fig, ax = plt.subplots(figsize=(7.0, 4.4), dpi=150)
    for role, color, marker in ((REAL_ONLY, "tab:blue", "o"), (WITH_EXTRA, "tab:orange", "s")):
        m = np.array([p[role]["mean"] for p in pts])
        sd = np.array([p[role]["std"] for p in pts])
        ax.errorbar(x, m, yerr=sd, color=color, marker=marker, lw=1.5, capsize=3, label=f"{role} (mean ± std over seeds)")
        for xi, p in zip(x, pts):
            ax.scatter([xi] * len(p[role]["values"]), p[role]["values"], s=9, color=color, alpha=0.45)
    grid = np.geomspace(fit["range"][0], fit["range"][1], 200)
    curve = sign * (fit["a"] - fit["b"] * grid ** (-fit["c"]))
    ax.plot(grid, curve, color="tab:blue", ls="--", lw=1, label="real-only fit")
    for xi, p in zip(x, pts):
        w, y = p["worth"], p[WITH_EXTRA]["mean"]
        if w["status"] == MEASURED:
            end, text = w["effective_frames"], f"{_frames(w['frames'])}"
        elif w["status"] == BEYOND:
            end, text = fit["range"][1], "beyond"
        elif w["status"] == BELOW:
            end, text = fit["range"][0], "below"
        else:
            continue
        ax.annotate("", xy=(end, y), xytext=(xi, y), arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 1})
        ax.text(math.sqrt(xi * end) if end > 0 else xi, y, text, fontsize=7, ha="center", va="bottom", color="0.2")
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{p['size']}\n({p['real_frames']})" if p["size"] != str(p["real_frames"]) else p["size"]
                      for p in pts])
    ax.minorticks_off()
    ax.set_xlabel("real training frames")
    ax.set_ylabel(result["metric"])
    ax.set_title("What the extra data is worth: horizontal gap = real frames")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def write_outputs(root: Path, result: dict[str, Any], title: str, arms: dict[str, str]) -> None:
    """data_value.json, data_value.png and report.md in ``root``."""
    from vsynth.eval.__main__ import jsonable
    from vsynth.run.atomic import write_json, write_text

    write_json(root / "data_value.json", jsonable(result))
    plot(result, root / "data_value.png")
    write_text(root / "report.md", render_report(result, title, arms, "data_value.png"))
