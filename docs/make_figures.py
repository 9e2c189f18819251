"""Benchmark figures and tables for the docs, from pytest-benchmark's JSON output.

    pytest benchmarks --benchmark-only --benchmark-json=docs/_data/benchmarks.json
    python docs/make_figures.py docs/_data/benchmarks.json        # -> docs/_generated/

The docs build (``conf.py``) calls :func:`write_benchmarks_page` itself, on every
``docs/_data/*.json`` (e.g. one file of speed benchmarks and one of training runs) or
the files named by ``PGFAST_BENCHMARK_JSON`` (separated by ``os.pathsep``); with none
it writes a note instead, so the site builds without benchmark runs.

Speed: one figure per benchmark module, one panel per pytest-benchmark group, each
case's median time divided by pgfast's in the same group (a case is pgfast's when
its name says ``pgfast`` or ``native``), so a bar at 10 reads "ten times pgfast's
time". Ratios within one group come from one run on one machine; absolute times are
in the tables only. Training: the groups named ``train …`` (benchmarks/bench_training.py)
become a table of wall time and evaluation return per seed, and learning curves when
a case records them in ``extra_info["curve"]`` as ``{"steps": [...], "mean_return": [...]}``.
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

OURS = re.compile(r"pgfast|native", re.IGNORECASE)
TRAINING_PREFIX = "train "
PAGE = "benchmarks.inc"


def load(paths):
    """The benchmark records of one or more pytest-benchmark JSON files, and the
    machine of the first."""
    records, machine = [], None
    for path in paths:
        data = json.loads(Path(path).read_text())
        if "benchmarks" not in data:
            raise ValueError(f"{path}: not pytest-benchmark JSON (no 'benchmarks' list)")
        machine = machine or {**data.get("machine_info", {}),
                              "datetime": data.get("datetime", ""),
                              "commit": data.get("commit_info", {}).get("id", "")}
        for bench in data["benchmarks"]:
            fullname = bench.get("fullname", bench["name"])
            records.append(dict(
                name=bench["name"], group=bench.get("group") or bench["name"],
                module=Path(fullname.split("::")[0]).stem,
                median=float(bench["stats"]["median"]),
                extra=bench.get("extra_info", {}),
            ))
    return records, machine or {}


def speed_groups(records):
    """{module: {group: [records, fastest first]}} for the speed benchmarks."""
    modules = defaultdict(lambda: defaultdict(list))
    for rec in records:
        if not rec["group"].startswith(TRAINING_PREFIX):
            modules[rec["module"]][rec["group"]].append(rec)
    return {m: {g: sorted(rs, key=lambda r: r["median"]) for g, rs in groups.items()}
            for m, groups in modules.items()}


def relative_times(group):
    """[(name, median / pgfast's fastest median, is ours)], or the fastest case as
    the unit when no case in the group is pgfast's."""
    ours = [r["median"] for r in group if OURS.search(r["name"])]
    unit = min(ours) if ours else group[0]["median"]
    return [(r["name"], r["median"] / unit, bool(OURS.search(r["name"]))) for r in group]


def _short(name):
    return re.sub(r"^test_", "", name)


def _seconds(t):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def speed_figure(module, groups, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(groups)
    heights = [0.45 * len(groups[g]) + 0.9 for g in names]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, group in zip(axes[:, 0], names):
        rows = relative_times(groups[group])
        y = range(len(rows))
        ratios = [ratio for _, ratio, _ in rows]
        # Bars grow from 1 (pgfast's time): right is slower than pgfast, left faster.
        ax.barh(y, [r - 1.0 for r in ratios], left=1.0, height=0.6,
                color=["tab:blue" if ours else "tab:gray" for *_, ours in rows])
        ax.set_xlim(min(min(ratios), 1.0) / 4, max(max(ratios), 1.0) * 4)
        ax.set_yticks(list(y), [_short(n) for n, *_ in rows], fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        for i, (_, ratio, ours) in enumerate(rows):
            ax.plot([ratio], [i], "D", color="tab:blue" if ours else "tab:gray", markersize=5)
            left = ratio < 1
            ax.annotate(f"{ratio:.3g}×", (ratio, i), xytext=(-6 if left else 6, 0),
                        textcoords="offset points", va="center", fontsize=8,
                        ha="right" if left else "left")
        ax.set_title(group, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("median time / pgfast's median time (log scale): right of 1 is "
                           "slower than pgfast (blue)")
    fig.suptitle(f"benchmarks/{module}.py", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def training_rows(records):
    """The training cases: [(group, case name, extra_info)]."""
    return [(r["group"][len(TRAINING_PREFIX):], r["name"], r["extra"])
            for r in records if r["group"].startswith(TRAINING_PREFIX)]


def curves_figure(rows, path):
    """Learning curves of the cases that record ``extra_info["curve"]``; False if none do."""
    curves = [(group, name, extra["curve"]) for group, name, extra in rows if "curve" in extra]
    if not curves:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_group = defaultdict(list)
    for group, name, curve in curves:
        by_group[group].append((name, curve))
    fig, axes = plt.subplots(1, len(by_group), figsize=(5 * len(by_group), 3.6), squeeze=False)
    for ax, (group, cases) in zip(axes[0], by_group.items()):
        for name, curve in cases:
            ax.plot(curve["steps"], curve["mean_return"], linewidth=1, label=_short(name))
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        if len(cases) <= 6:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _table(header, rows):
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out.append("   * - " + str(row[0]))
        out += [f"     - {cell}" for cell in row[1:]]
    return out + [""]


def write_figures(records, machine, out_dir):
    """Figures into out_dir and the reST that shows them; returns the reST lines."""
    out_dir = Path(out_dir)
    lines = [f"Measured on {machine.get('cpu', {}).get('brand_raw', 'an unnamed CPU')}, "
             f"Python {machine.get('python_version', '?')}, "
             f"{machine.get('datetime', '')[:16].replace('T', ' ')}"
             + (f", commit ``{machine['commit'][:10]}``" if machine.get("commit") else "")
             + ".", ""]
    speed = speed_groups(records)
    if speed:
        lines += ["Speed against the references", "----------------------------", ""]
    for module, groups in sorted(speed.items()):
        image = f"speed-{module}.png"
        speed_figure(module, groups, out_dir / image)
        lines += [f"``benchmarks/{module}.py``", "~" * (len(module) + 19), "",
                  f".. image:: /_generated/{image}", f"   :alt: relative times, {module}", ""]
        for group, recs in groups.items():
            lines += [f"**{group}**", ""]
            lines += _table(["case", "median", "relative to pgfast"],
                            [(_short(n), _seconds(r["median"]), f"{ratio:.3g}×")
                             for r, (n, ratio, _) in zip(recs, relative_times(recs))])
    rows = training_rows(records)
    if rows:
        lines += ["Training runs", "-------------", ""]
        if curves_figure(rows, out_dir / "learning-curves.png"):
            lines += [".. image:: /_generated/learning-curves.png",
                      "   :alt: learning curves", ""]
        # the extra_info keys benchmarks/bench_training.py records per run
        keys = ["eval", "solved", "steps", "cpu_s", "wall_s"]
        # The run's group is the command that trains it: a literal, pasted as typed.
        lines += _table(["run", "case", *keys],
                        [(f"``pgfast train {g}``", _short(n), *(_cell(e.get(k)) for k in keys))
                         for g, n, e in rows])
    return lines


def _cell(value):
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


NO_RESULTS = """\
.. note::

   This build has no benchmark results: the figures are made from
   pytest-benchmark's JSON output, and none was given. To include them, run

   .. code-block:: bash

      OPENBLAS_NUM_THREADS=1 pytest benchmarks --benchmark-only \\
          --benchmark-json=docs/_data/benchmarks.json
      python -m sphinx -W -b html docs docs/_build/html

   (or point ``PGFAST_BENCHMARK_JSON`` at the JSON file).
"""


def write_benchmarks_page(json_paths, out_dir):
    """Write ``out_dir/benchmarks.inc`` (and the figures) from the pytest-benchmark JSON
    files among json_paths that exist, or the note that there are no results."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    found = [Path(p) for p in json_paths if Path(p).is_file()]
    if found:
        records, machine = load(found)
        text = "\n".join(write_figures(records, machine, out_dir)) + "\n"
    else:
        text = NO_RESULTS
    page = out_dir / PAGE
    if not page.exists() or page.read_text() != text:
        page.write_text(text)
    return page


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", help="pytest-benchmark --benchmark-json output")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "_generated"),
                        help="folder for the figures and benchmarks.inc")
    args = parser.parse_args(argv)
    missing = [p for p in args.json if not Path(p).is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    page = write_benchmarks_page(args.json, args.out)
    print(f"wrote {page} and its figures")


if __name__ == "__main__":
    main()
