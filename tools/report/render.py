#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""render.py -- REPORT.md from a results folder (Python 3 standard library + gnuplot)

  tools/report/render.py RESULTS_DIR REPORT.md [--claims claims.json] [--no-plots]

Reads RESULTS_DIR/<scenario>.json (contract: tools/report/README.md), RESULTS_DIR/_run.json
(machine, commit, date) and the claims and SLO tables, and writes REPORT.md: every claim of
the original report beside the value this run measured (or why it was not measured), the
SLO rows, then one section per scenario with its figures and its timeline, drawn by gnuplot
as plots/<scenario>.svg next to REPORT.md. A result file that breaks the contract (not
JSON, a missing key, an unknown status, a claim without its verdict, a series file that is
not there) is an error naming the file and the key: exit 1, nothing written.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STATUSES = ("pass", "fail", "skipped")
VERDICT = {True: "**PASS**", False: "**FAIL**"}


class Bad(Exception):
    pass


def need(obj, key, types, where):
    if not isinstance(obj, dict) or key not in obj:
        raise Bad(f"{where}: missing \"{key}\"")
    if not isinstance(obj[key], types):
        raise Bad(f"{where}: \"{key}\" has the wrong type ({type(obj[key]).__name__})")
    return obj[key]


def load_result(path, results):
    where = os.path.basename(path)
    try:
        with open(path) as f:
            r = json.load(f)
    except ValueError as e:
        raise Bad(f"{where}: not JSON: {e}")
    name = need(r, "scenario", str, where)
    if name + ".json" != where:
        raise Bad(f"{where}: \"scenario\" is {name!r}, the file name says otherwise")
    if need(r, "status", str, where) not in STATUSES:
        raise Bad(f"{where}: \"status\" {r['status']!r} is none of {', '.join(STATUSES)}")
    need(r, "reason", str, where)
    if r["status"] != "pass" and not r["reason"].strip():
        raise Bad(f"{where}: status {r['status']} needs a \"reason\"")
    need(r, "started", str, where)
    need(r, "duration_s", (int, float), where)
    for i, c in enumerate(need(r, "claims", list, where)):
        w = f"{where}: claims[{i}]"
        need(c, "id", str, w)
        if "measured" not in c:
            raise Bad(f"{w}: missing \"measured\"")
        need(c, "unit", str, w)
        need(c, "pass", bool, w)
    for i, s in enumerate(need(r, "slo", list, where)):
        w = f"{where}: slo[{i}]"
        need(s, "id", str, w)
        if "measured" not in s:
            raise Bad(f"{w}: missing \"measured\"")
        need(s, "pass", bool, w)
    series = r.get("series")
    if series is not None:
        if not isinstance(series, str) or "/" in series:
            raise Bad(f"{where}: \"series\" must be a file name in the same folder")
        if not os.path.exists(os.path.join(results, series)):
            raise Bad(f"{where}: \"series\" {series} does not exist")
    return r


def fmt(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "n/a"
        a = abs(v)
        return f"{v:,.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else \
            f"{v:.2f}" if a >= 1 or a == 0 else f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    if v is None:
        return "n/a"
    return str(v)


def esc(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


# ---- plots ------------------------------------------------------------------------------

PANELS = [
    ("requests/s", ["offered", "admitted", "4xx", "5xx"], False),
    ("lag (s)", ["lag_critical", "lag_normal", "lag_low"], False),
    ("state", ["overload", "breaker"], True),
    ("CPU cores, RSS MiB (right)", ["cpu", "rss_mb"], False),
]


def tsv_columns(path):
    with open(path) as f:
        cols = f.readline().rstrip("\n").split("\t")
        rows = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    present = [c for i, c in enumerate(cols)
               if any(i < len(r) and r[i] not in ("", "NaN") for r in rows)]
    return cols, present, len(rows)


def plot(results, name, series, plots_dir, title):
    """plots/<name>.svg from the timeline; returns its path or raises Bad."""
    path = os.path.join(results, series)
    cols, present, nrows = tsv_columns(path)
    if "t" not in cols or nrows < 2:
        raise Bad(f"{series}: needs a \"t\" column and at least two rows")
    panels = [(lab, [c for c in cs if c in present], step) for lab, cs, step in PANELS]
    panels = [p for p in panels if p[1]]
    if not panels:
        raise Bad(f"{series}: none of the plotted columns "
                  f"({', '.join(c for _, cs, _ in PANELS for c in cs)})")
    out = os.path.join(plots_dir, f"{name}.svg")
    h = 200 * len(panels) + 60
    g = [f"set terminal svg size 900,{h} dynamic noenhanced font 'sans,11' background '#ffffff'",
         f"set output '{out}'",
         "set datafile separator '\\t'",
         "set datafile missing ''",
         "set grid", "set key outside right top",
         "set lmargin at screen 0.08", "set rmargin at screen 0.82",
         f"set multiplot layout {len(panels)},1 title '{title}'"]
    for i, (lab, cs, step) in enumerate(panels):
        g.append(f"set ylabel '{lab}'")
        g.append("set xlabel 'seconds'" if i == len(panels) - 1 else "unset xlabel")
        if step:
            g += ["set yrange [-0.2:2.2]", "set ytics ('0' 0, '1' 1, '2' 2)"]
        else:
            g += ["set yrange [0:*]", "set ytics autofreq"]
        right = "rss_mb" in cs  # memory on its own axis, beside CPU
        g += ["set y2range [0:*]", "set y2tics autofreq", "set ytics nomirror"] if right \
            else ["unset y2tics", "set ytics mirror"]
        parts = [f"'{path}' using (column('t')):(column('{c}')) "
                 f"{'axes x1y2 ' if c == 'rss_mb' else ''}with "
                 f"{'steps' if step else 'lines'} lw 2 title '{c}'" for c in cs]
        g.append("plot " + ", ".join(parts))
    g.append("unset multiplot")
    r = subprocess.run(["gnuplot"], input="\n".join(g) + "\n", capture_output=True, text=True)
    if r.returncode or not os.path.exists(out):
        raise Bad(f"{series}: gnuplot failed: {r.stderr.strip()[-300:]}")
    return out


# ---- the report -------------------------------------------------------------------------

def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    claims_path = os.path.join(HERE, "claims.json")
    if "--claims" in argv:
        claims_path = argv[argv.index("--claims") + 1]
        args.remove(claims_path)
    plots = "--no-plots" not in argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    results, report = args
    with open(claims_path) as f:
        table = json.load(f)
    runinfo = {}
    if os.path.exists(os.path.join(results, "_run.json")):
        with open(os.path.join(results, "_run.json")) as f:
            runinfo = json.load(f)
    res = {}
    try:
        for f in sorted(os.listdir(results)):
            if f.endswith(".json") and not f.startswith("_"):
                r = load_result(os.path.join(results, f), results)
                res[r["scenario"]] = r
    except Bad as e:
        print(f"render.py: {results}/{e}", file=sys.stderr)
        return 1
    rdir = os.path.dirname(os.path.abspath(report))
    plots_dir = os.path.join(rdir, "plots")
    svgs, plot_note = {}, {}
    if plots and not shutil.which("gnuplot"):
        plots = False
        plot_note = {n: "no plot: gnuplot is not installed (tools/setup)" for n in res}
    if plots:
        os.makedirs(plots_dir, exist_ok=True)
        for n, r in res.items():
            if r.get("series"):
                try:
                    plot(results, n, r["series"], plots_dir, f"{n}: {r['status']}")
                    svgs[n] = f"plots/{n}.svg"
                except Bad as e:
                    print(f"render.py: {results}/{e}", file=sys.stderr)
                    return 1
    md = render(table, res, runinfo, svgs, plot_note, rdir, results)
    with open(report, "w") as f:
        f.write(md)
    print(f"render.py: wrote {report} ({len(res)} scenarios, {len(svgs)} plots)")
    return 0


def machine_line(runinfo):
    m = runinfo.get("machine", {})
    if not m:
        return "unknown (no _run.json)"
    virt = f", {m['virtualization']}" if m.get("virtualization") not in (None, "", "none") \
        else ""
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('ram_gib', '?')} GiB "
            f"RAM, Linux {m.get('kernel', '?')}{virt} ({m.get('os', '')})")


def render(table, res, runinfo, svgs, plot_note, rdir, results):
    L = []
    order = list(dict.fromkeys(c["scenario"] for c in table["claims"] if c["scenario"] in res))
    res = {n: res[n] for n in order + sorted(set(res) - set(order))}
    rel_results = os.path.relpath(results, rdir)
    L.append("# Sluice hardening report, measured\n")
    L.append("Every figure below comes from the run that wrote this file "
             f"(`{runinfo.get('command', 'make report')}`); the raw results are in "
             f"[`{rel_results}/`]({rel_results}/), one JSON and one timeline per scenario. "
             "Claims are those of the original hardening report; the scenarios are scaled "
             "to the machine below (see each scenario's setup).\n")
    L.append("| | |\n|---|---|")
    L.append(f"| date | {runinfo.get('date', '?')} |")
    dirty = " (with uncommitted changes)" if runinfo.get("dirty") else ""
    L.append(f"| commit | `{runinfo.get('commit', '?')}`{dirty} "
             f"{esc(runinfo.get('commit_subject', ''))} (a scenario run at another commit, "
             "with `SCENARIOS=`, names its own) |")
    L.append(f"| version | {runinfo.get('version', '?')} |")
    L.append(f"| machine | {esc(machine_line(runinfo))} |")
    L.append(f"| mode | {'QUICK=1 (CI-sized runs)' if runinfo.get('quick') else 'full'} |")
    las = [s.get("loadavg_before") for s in runinfo.get("scenarios", {}).values()
           if s.get("loadavg_before")]
    if las:
        peak = max(la[0] for la in las)
        L.append(f"| load average (1 min) before the scenarios | "
                 f"{min(la[0] for la in las):.1f} to {peak:.1f}"
                 f"{' -- busy machine: latencies and rates are noisy' if peak > (runinfo.get('machine', {}).get('cores') or 1) else ''} |")
    L.append("")

    # claims
    L.append("## The claims\n")
    L.append("| section | claim (original report) | measured here | verdict | scenario |")
    L.append("|---|---|---|---|---|")
    for c in table["claims"]:
        sc = c["scenario"]
        r = res.get(sc)
        got = None
        if r:
            got = next((x for x in r["claims"] if x["id"] == c["id"]), None)
        if got:
            m = f"{fmt(got['measured'])} {got['unit']}".strip()
            if got.get("note"):
                m += f" ({got['note']})"
            v = VERDICT[got["pass"]]
        elif r and r["status"] == "skipped":
            m, v = f"not run: {r['reason']}", "SKIPPED"
        elif r:
            m, v = f"not measured: {r['reason'] or 'the scenario reported no figure for it'}", \
                "**FAIL**"
        else:
            m, v = f"scenario `{sc}` not in this run", "NOT RUN"
        link = f"[{sc}](#{sc})" if r else sc
        L.append(f"| {esc(c['section'])} | {esc(c['claim'])} | {esc(m)} | {v} | {link} |")
    L.append("")

    # SLO
    L.append("## SLO table\n")
    L.append("| scenario | " + " | ".join(f"{s['id']} ({s['op']} {fmt(s['target'])} {s['unit']})"
                                        for s in table["slo"]) + " |")
    L.append("|---|" + "---|" * len(table["slo"]))
    for n, r in res.items():
        cells = []
        for s in table["slo"]:
            got = next((x for x in r["slo"] if x["id"] == s["id"]), None)
            cells.append(f"{fmt(got['measured'])} {'✔' if got['pass'] else '✘ FAIL'}"
                         if got else "")
        if any(cells):
            L.append(f"| [{n}](#{n}) | " + " | ".join(cells) + " |")
    L.append("")
    L.append("SLOs: " + "; ".join(f"**{s['id']}** {s['name']}" for s in table["slo"]) + ".\n")

    # scenarios
    L.append("## Scenarios\n")
    L.append("| scenario | status | duration | reason |")
    L.append("|---|---|---|---|")
    for n, r in res.items():
        L.append(f"| [{n}](#{n}) | {r['status'].upper()} | "
                 f"{r['duration_s']:.0f} s | {esc(r['reason'])} |")
    L.append("")
    for n, r in res.items():
        L.append(f"### {n}\n")
        quick = " (QUICK)" if r.get("quick") else ""
        own = runinfo.get("scenarios", {}).get(n, {}).get("commit")
        other = f" at commit `{own}`" if own and own != runinfo.get("commit") else ""
        L.append(f"**{r['status'].upper()}**{quick}, started {r['started']}{other}, "
                 f"{r['duration_s']:.0f} s." + (f" {esc(r['reason'])}" if r['reason'] else ""))
        L.append("")
        if r.get("setup"):
            L.append(f"Setup: {r['setup']}\n")
        rows = []
        for c in r["claims"]:
            rows.append(f"| claim `{c['id']}` | {esc(fmt(c['measured']))} {c['unit']} | "
                        f"{VERDICT[c['pass']]} | {esc(c.get('note', ''))} |")
        for s in r["slo"]:
            rows.append(f"| SLO `{s['id']}` {s.get('target', '')} | {esc(fmt(s['measured']))} "
                        f"{s.get('unit', '')} | {VERDICT[s['pass']]} | {esc(s.get('note', ''))} |")
        for k, v in (r.get("figures") or {}).items():
            rows.append(f"| {esc(k)} | {esc(fmt(v))} | | |")
        if rows:
            L.append("| figure | value | verdict | note |\n|---|---|---|---|")
            L += rows
            L.append("")
        if n in svgs:
            L.append(f"![{n} timeline]({svgs[n]})\n")
        elif n in plot_note and r.get("series"):
            L.append(f"({plot_note[n]})\n")
    L.append("---\nGenerated by `tools/report/render.py`; the scenarios and their contract are "
             "in `tools/report/` (README there).\n")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
