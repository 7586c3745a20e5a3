# SPDX-License-Identifier: MIT
"""scn.py -- what the report's scenarios share (Python 3 standard library only)

A scenario is `tools/report/scenarios/<name> [--quick] OUTDIR` (contract: ../README.md).
This module gives it:
  Scenario     arguments, temp dir, cleanup of everything started, the result JSON and the
               timeline TSV, claim and SLO verdicts (targets from claims.json)
  Postgres     a private PostgreSQL in the temp dir, run as the postgres user
  MockUpstream tools/mock-upstream with faults changeable at run time
  Sluiced      tenants/routes files, start, stop (SIGTERM), kill, /metrics
  Loadgen      tools/loadgen as a child: its JSON report and per-second timeline
  Sampler      /metrics and /proc once a second into the timeline
Typical use:

    with Scenario("spike") as s:          # parses argv, writes the JSON even on exceptions
        pg = s.postgres()
        d = s.sluiced(TENANTS, ROUTES, pg=pg)
        smp = s.sampler(d)                # t = 0 now
        lg = s.loadgen(d, ["--key", "k", "--phase", "100:30"])
        lg.wait()
        s.claim("spike_lag", 3.1, "s", ok, note="...")
"""
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
OUT = os.path.join(ROOT, os.environ.get("OUTPUT", ".output"))
CLAIMS = os.environ.get("REPORT_CLAIMS", os.path.join(ROOT, "tools", "report", "claims.json"))
PGBIN = "/usr/lib/postgresql/15/bin"
COLUMNS = ["t", "offered", "admitted", "4xx", "5xx", "lag_critical", "lag_normal", "lag_low",
           "overload", "breaker", "cpu", "rss_mb"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


def tenant(name, key, cls="normal", rate=None, burst=None):
    """One [tenant] section of a tenants file (rate None: unlimited)."""
    s = f"[{name}]\nkey = {key_hash(key)}\nclass = {cls}\n"
    if rate:
        s += f"req_rate = {rate}\nreq_burst = {burst or rate}\n"
    return s


def sluiced_has(option):
    """Whether this build's sluiced knows --option (e.g. "queue" for the Kafka backend)."""
    out = subprocess.run([os.path.join(OUT, "sluiced"), "--help"], capture_output=True,
                         text=True).stdout
    return f"--{option} " in out or f"--{option}\n" in out


class Skip(Exception):
    """Raise to record the scenario as skipped with this reason."""


class Fail(Exception):
    """Raise to record the scenario as failed with this reason."""


# ---- /metrics ---------------------------------------------------------------------------

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text):
    """[(name, labels dict, value)] of a Prometheus text page."""
    out = []
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = _LINE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(3))))
        except ValueError:
            pass
    return out


def msum(metrics, name, **want):
    """Sum of the series of name whose labels include want; None when there is none."""
    vals = [v for n, l, v in metrics if n == name and all(l.get(k) == w for k, w in want.items())]
    return sum(vals) if vals else None


def mmax(metrics, name, **want):
    vals = [v for n, l, v in metrics if n == name and all(l.get(k) == w for k, w in want.items())]
    return max(vals) if vals else None


def hist_quantile(before, after, name, q, **want):
    """Quantile q of histogram name between two /metrics pages (seconds), interpolated
    linearly inside its bucket as Prometheus' histogram_quantile does."""
    def buckets(m):
        b = {}
        for n, l, v in m:
            if n == name + "_bucket" and all(l.get(k) == w for k, w in want.items()):
                le = float("inf") if l["le"] == "+Inf" else float(l["le"])
                b[le] = b.get(le, 0) + v
        return b
    b0, b1 = buckets(before or []), buckets(after)
    les = sorted(b1)
    if not les:
        return None
    counts = [b1[le] - b0.get(le, 0) for le in les]
    total = counts[-1]
    if total <= 0:
        return None
    rank, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in zip(les, counts):
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c
    return les[-1]


# ---- services ---------------------------------------------------------------------------

class Postgres:
    def __init__(self, scn, fsync=True):
        self.dir = os.path.join(scn.tmp, f"pg{len(scn.cleanups)}")
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=sluice user=postgres"
        su = ["runuser", "-u", "postgres", "--"]
        subprocess.run(su + [f"{PGBIN}/initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U",
                             "postgres", "-E", "UTF8"], check=True, capture_output=True)
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                f"-c shared_buffers=256MB -c max_wal_size=2GB -c fsync={'on' if fsync else 'off'}"
                f" -c max_connections=200")
        subprocess.run(su + [f"{PGBIN}/pg_ctl", "-D", f"{self.dir}/data", "-l",
                             f"{self.dir}/server.log", "-w", "-t", "60", "-o", opts, "start"],
                       check=True, capture_output=True)
        scn.cleanups.append(self.stop)
        subprocess.run(su + ["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                             "postgres", "sluice"], check=True, capture_output=True)

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D",
                        f"{self.dir}/data", "-m", "immediate", "stop"], capture_output=True)

    def psql(self, sql):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-qtAX", "-v", "ON_ERROR_STOP=1", "sluice", "-c", sql],
                           capture_output=True, text=True)
        if r.returncode:
            raise Fail(f"psql: {sql[:80]}: {r.stderr.strip()}")
        return r.stdout.strip()

    def value(self, sql, default=0):
        out = self.psql(sql)
        try:
            return float(out) if "." in out else int(out)
        except ValueError:
            return default

    def load_answers(self, table, *loadgens):
        """Copy loadgen answer logs into table(key, type, class, status, kidx)."""
        self.psql(f"CREATE TABLE IF NOT EXISTS {table} (key text, type text, class text, "
                  "status int, kidx int)")
        for lg in loadgens:
            os.chmod(lg.log, 0o644)
            self.psql(f"\\copy {table} FROM '{lg.log}' WITH (FORMAT text, DELIMITER ' ')")


class MockUpstream:
    def __init__(self, scn, faults=""):
        self.proc = subprocess.Popen(
            [os.path.join(OUT, "mock-upstream"), "--port", "0", "--control-port", "0",
             "--faults", faults or "latency_ms=0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        scn.cleanups.append(self.stop)
        line = self.proc.stdout.readline()
        m = re.search(r"port=(\d+) control=(\d+)", line)
        if not m:
            raise Fail(f"mock-upstream did not start: {line!r}")
        self.port, self.control = int(m.group(1)), int(m.group(2))
        self.url = f"http://127.0.0.1:{self.port}/score"

    def faults(self, query):
        req = urllib.request.Request(f"http://127.0.0.1:{self.control}/faults?{query}",
                                     method="POST", data=b"")
        return json.load(urllib.request.urlopen(req, timeout=5))

    def stats(self):
        return json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.control}/stats",
                                                timeout=5))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Sluiced:
    def __init__(self, scn, tenants, routes, pg=None, extra=(), name="sluiced", threads=1,
                 journal=True):
        self.scn, self.name = scn, name
        self.port, self.admin = free_port(), free_port()
        self.tenants = scn.write(f"{name}-tenants.ini", tenants)
        self.routes = scn.write(f"{name}-routes.ini", routes)
        self.journal = os.path.join(scn.tmp, f"{name}-journal")
        self.logpath = os.path.join(scn.tmp, f"{name}.log")
        self.args = [os.path.join(OUT, "sluiced"), "--listen", f"127.0.0.1:{self.port}",
                     "--admin-listen", f"127.0.0.1:{self.admin}", "--threads", str(threads),
                     "--tenants", self.tenants, "--routes", self.routes,
                     "--log-level", "warn"] + (["--journal-dir", self.journal] if journal else []) + (
                         ["--pg", pg.conninfo] if pg else []) + list(extra)
        self.proc = None
        scn.cleanups.append(self.kill)
        self.start()

    def start(self):
        logf = open(self.logpath, "a")
        self.proc = subprocess.Popen(self.args, stdout=logf, stderr=logf)
        logf.close()
        for _ in range(300):
            if self.proc.poll() is not None:
                raise Fail(f"{self.name} exited {self.proc.returncode}: {self.log_tail()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/readyz", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise Fail(f"{self.name} not ready within 30 s: {self.log_tail()}")

    def log_tail(self, n=600):
        try:
            return open(self.logpath).read()[-n:].replace("\n", " | ")
        except OSError:
            return ""

    def metrics_text(self):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics",
                                      timeout=5).read().decode()

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def stop(self, timeout=30):
        """SIGTERM, wait for the drain; returns the exit status (None: had to SIGKILL)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Loadgen:
    n = 0

    def __init__(self, scn, port, args, name=None):
        Loadgen.n += 1
        name = name or f"load{Loadgen.n}"
        self.out = os.path.join(scn.tmp, f"{name}.json")
        self.log = os.path.join(scn.tmp, f"{name}.log")
        self.t_start = scn.now()
        with open(self.out, "w") as f:
            self.proc = subprocess.Popen(
                [os.path.join(OUT, "loadgen"), "--port", str(port), "--json", "--timeline",
                 "--log", self.log] + list(args), stdout=f, stderr=subprocess.PIPE, text=True)
        self.report = None
        scn.cleanups.append(self.kill)
        scn.loads.append(self)

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=3600):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)  # drains and prints its report
            self.proc.wait(60)
        if self.proc.returncode:
            raise Fail(f"loadgen exited {self.proc.returncode}: {self.proc.stderr.read()[-300:]}")
        with open(self.out) as f:
            self.report = json.load(f)
        return self.report

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def get(self, path, default=0):
        v = self.report
        for part in path.split("."):
            if isinstance(v, list):
                v = v[int(part)] if int(part) < len(v) else None
            elif isinstance(v, dict):
                v = v.get(part)
            if v is None:
                return default
        return v


def proc_sample(pid):
    """(cpu seconds, rss MiB) of a process, or (None, None)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
        return cpu, rss
    except (OSError, StopIteration, IndexError, ValueError):
        return None, None


class Sampler:
    """Reads /metrics of the daemons (summed) and /proc once per period into rows."""

    def __init__(self, scn, daemons, period=1.0, extra=None):
        """extra: a function returning more columns for each row (a dict)."""
        self.scn, self.daemons, self.period, self.extra = scn, list(daemons), period, extra
        self.rows, self.first, self.last = [], None, None
        self._prev = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        scn.cleanups.append(self.stop)

    def _page(self):
        m = []
        for d in self.daemons:
            try:
                if d.proc and d.proc.poll() is None:
                    m += d.metrics()
            except Exception:
                pass
        return m

    def sample(self):
        m = self._page()
        t = self.scn.now()
        cpu = rss = 0.0
        for d in self.daemons:
            c, r = proc_sample(d.proc.pid) if d.proc and d.proc.poll() is None else (None, None)
            cpu += c or 0
            rss += r or 0
        req = {}
        for n, l, v in m:
            if n == "sluice_http_requests_total" and l.get("route") == "/v1/events":
                req[l.get("status", "0")[0]] = req.get(l.get("status", "0")[0], 0) + v
        row = {"t": round(t, 2),
               "lag_critical": mmax(m, "sluice_queue_lag_seconds", **{"class": "critical"}),
               "lag_normal": mmax(m, "sluice_queue_lag_seconds", **{"class": "normal"}),
               "lag_low": mmax(m, "sluice_queue_lag_seconds", **{"class": "low"}),
               "overload": mmax(m, "sluice_overload_state"),
               "breaker": mmax(m, "sluice_breaker_state"),
               "rss_mb": round(rss, 1),
               "waiting": msum(m, "sluice_queue_waiting"),
               "rows_written": msum(m, "sluice_db_rows_written_total")}
        if self.extra:
            row.update(self.extra())
        for c in ("lag_critical", "lag_normal", "lag_low"):
            if row[c] is not None:
                row[c] = round(row[c], 3)
        if self._prev and m:
            dt = t - self._prev[0]
            p = self._prev[1]
            row["d_admitted"] = max(0, (req.get("2", 0) - p.get("2", 0)) / dt)
            row["d_4xx"] = max(0, (req.get("4", 0) - p.get("4", 0)) / dt)
            row["d_5xx"] = max(0, (req.get("5", 0) - p.get("5", 0)) / dt)
            row["d_offered"] = row["d_admitted"] + row["d_4xx"] + row["d_5xx"]
            row["cpu"] = round(max(0, cpu - self._prev[2]) / dt, 3)
        if m:
            self._prev = (t, req, cpu)
            self.last = m
            if self.first is None:
                self.first = m
            self.rows.append(row)
        return row

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.period)

    def stop(self):
        self._stop.set()
        if self._t.is_alive():
            self._t.join(10)

    def max(self, col):
        vals = [r[col] for r in self.rows if r.get(col) is not None]
        return max(vals) if vals else None

    def first_at(self, col, at_least, after=0.0):
        for r in self.rows:
            if r["t"] >= after and (r.get(col) or 0) >= at_least:
                return r["t"]
        return None


# ---- the scenario -----------------------------------------------------------------------

def _slo_table():
    with open(CLAIMS) as f:
        return {s["id"]: s for s in json.load(f)["slo"]}


def verdict(op, measured, target):
    if measured is None:
        return False
    return {"<=": measured <= target, ">=": measured >= target, "<": measured < target,
            ">": measured > target, "==": measured == target}[op]


class Scenario:
    def __init__(self, name, setup=""):
        args = [a for a in sys.argv[1:]]
        self.quick = "--quick" in args
        args = [a for a in args if a != "--quick"]
        if len(args) != 1:
            print(f"usage: {sys.argv[0]} [--quick] OUTDIR", file=sys.stderr)
            sys.exit(2)
        self.name, self.outdir = name, os.path.abspath(args[0])
        os.makedirs(self.outdir, exist_ok=True)
        self.result = {"scenario": name, "status": "pass", "reason": "", "quick": self.quick,
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "duration_s": 0, "setup": setup, "claims": [], "slo": [],
                       "figures": {}, "series": None}
        self.cleanups, self.loads = [], []
        self.sampler_obj = None
        self.t_begin = self.t0 = time.monotonic()
        self.tmp = tempfile.mkdtemp(prefix=f"sluice-report-{name}.")
        os.chmod(self.tmp, 0o755)
        # the runner's time limit (or ^C) ends the scenario through __exit__: cleanups run
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    @staticmethod
    def _on_signal(sig, frame):
        raise Fail(f"stopped by {signal.Signals(sig).name} (time limit or interrupt)")

    # lifetime
    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is Skip:
            self.result.update(status="skipped", reason=str(ev))
        elif et is Fail:
            self.result.update(status="fail", reason=str(ev))
        elif et is not None:
            traceback.print_exception(et, ev, tb)
            self.result.update(status="fail", reason=f"{et.__name__}: {ev}")
        for c in reversed(self.cleanups):
            try:
                c()
            except Exception as e:  # cleanup goes on
                log(f"cleanup: {e}")
        self.finish()
        if os.environ.get("REPORT_KEEP_TMP"):
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return et is not None and issubclass(et, Exception)

    def now(self):
        return time.monotonic() - self.t0

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # services
    def postgres(self, **kw):
        return Postgres(self, **kw)

    def mock(self, faults=""):
        return MockUpstream(self, faults)

    def sluiced(self, tenants, routes, **kw):
        return Sluiced(self, tenants, routes, **kw)

    def sampler(self, *daemons, period=1.0, extra=None):
        """Start the timeline: t = 0 from now."""
        self.t0 = time.monotonic()
        self.sampler_obj = Sampler(self, daemons, period, extra)
        return self.sampler_obj

    def loadgen(self, daemon, args, **kw):
        return Loadgen(self, daemon.port if hasattr(daemon, "port") else daemon, args, **kw)

    # verdicts
    def claim(self, cid, measured, unit, ok, note=""):
        self.result["claims"].append({"id": cid, "measured": measured, "unit": unit,
                                      "pass": bool(ok), "note": note})
        if not ok:
            self._fail(f"claim {cid}: measured {measured} {unit}")
        return ok

    def slo(self, sid, measured, note=""):
        s = _slo_table()[sid]
        ok = verdict(s["op"], measured, s["target"])
        self.result["slo"].append({"id": sid, "measured": measured, "unit": s["unit"],
                                   "target": f"{s['op']} {s['target']}", "pass": ok,
                                   "note": note})
        if not ok:
            self._fail(f"SLO {sid}: measured {measured} {s['unit']}")
        return ok

    def figure(self, name, value):
        self.result["figures"][name] = value
        log(f"{self.name}: {name} = {value}")

    def _fail(self, why):
        if self.result["status"] == "pass":
            self.result["status"] = "fail"
        self.result["reason"] = (self.result["reason"] + "; " if self.result["reason"] else "") \
            + why

    # output
    def timeline(self):
        """Rows of the timeline: the sampler's, with the load generators' per-second
        counts as offered/admitted/4xx/5xx where their seconds fall."""
        rows = [dict(r) for r in (self.sampler_obj.rows if self.sampler_obj else [])]
        if not rows:
            return []
        have_lg = False
        for lg in self.loads:
            if not lg.report:
                continue
            have_lg = True
            secs = lg.report.get("timeline", [])
            for r in rows:
                # the row at t shows the rates of the load's second that holds t
                i = math.ceil(r["t"] - lg.t_start) - 1
                if 0 <= i < len(secs):
                    sec = secs[i]
                    r["offered"] = r.get("offered", 0) + sec["sent"]
                    r["admitted"] = r.get("admitted", 0) + sec["2xx"]
                    r["4xx"] = r.get("4xx", 0) + sec["429"]
                    r["5xx"] = r.get("5xx", 0) + sec["503"]
        for r in rows:
            if not have_lg:
                for c in ("offered", "admitted", "4xx", "5xx"):
                    r[c] = round(r.get("d_" + c, 0), 1)
            for c in ("offered", "admitted", "4xx", "5xx"):
                r.setdefault(c, 0)
        return rows

    def finish(self):
        rows = self.timeline()
        if rows:
            extra = sorted({k for r in rows for k in r} - set(COLUMNS)
                           - {"d_offered", "d_admitted", "d_4xx", "d_5xx"})
            cols = COLUMNS + extra
            path = os.path.join(self.outdir, f"{self.name}.tsv")
            with open(path, "w") as f:
                f.write("\t".join(cols) + "\n")
                for r in rows:
                    f.write("\t".join("" if r.get(c) is None else
                                      (f"{r[c]:.3f}".rstrip("0").rstrip(".")
                                       if isinstance(r[c], float) else str(r[c]))
                                      for c in cols) + "\n")
            self.result["series"] = f"{self.name}.tsv"
        self.result["duration_s"] = round(time.monotonic() - self.t_begin, 1)
        with open(os.path.join(self.outdir, f"{self.name}.json"), "w") as f:
            json.dump(self.result, f, indent=1)
            f.write("\n")
        log(f"{self.name}: {self.result['status']} {self.result['reason']}")


# ---- what most scenarios measure --------------------------------------------------------

def wait_until(fn, timeout, period=0.5):
    """Call fn until it returns a true value or timeout seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= end:
            return v
        time.sleep(period)


def unavailable(loads):
    """Requests of critical/normal/tenant class refused with 503 or never answered."""
    n = 0
    for lg in loads:
        n += lg.get("errors") + sum(lg.get(f"per_class.{c}.503")
                                    for c in ("critical", "normal", "tenant"))
        n += sum(v for k, v in lg.get("status", {}).items()
                 if k.startswith("5") and k != "503")
    return n


def availability(loads):
    sent = sum(lg.get("sent") for lg in loads)
    return round(100.0 * (sent - unavailable(loads)) / sent, 3) if sent else None


def lost_202(pg, loads, table="answers", where="TRUE"):
    """202'd keys (answer logs of loads) missing from events; where filters answers a."""
    pg.load_answers(table, *loads)
    return pg.value(f"SELECT count(*) FROM {table} a WHERE a.status = 202 AND {where} AND NOT "
                    "EXISTS (SELECT 1 FROM events e WHERE e.idempotency_key = a.key)")


def duplicate_rows(pg):
    """Events stored more than once (same tenant and key)."""
    return pg.value("SELECT count(*) FROM (SELECT 1 FROM events GROUP BY tenant, "
                    "idempotency_key HAVING count(*) > 1) d")


def wait_stored(pg, n, timeout):
    """Wait until events holds at least n rows; returns the count."""
    got = [0]

    def done():
        got[0] = pg.value("SELECT count(*) FROM events")
        return got[0] >= n
    wait_until(done, timeout)
    return got[0]


def standard_slos(s, loads, smp, loss, p99_loads=None):
    """The SLO rows every load scenario reports: availability, p99, lags, DB write, loss."""
    s.slo("availability", availability(loads))
    p99 = max((lg.get("latency.p99_ms") for lg in (p99_loads or loads)), default=None)
    s.slo("p99_ms", p99)
    s.slo("lag_critical_s", smp.max("lag_critical") or 0.0)
    s.slo("lag_normal_s", smp.max("lag_normal") or 0.0)
    q = hist_quantile(smp.first, smp.last or [], "sluice_db_batch_duration_seconds", 0.99)
    if q is not None:
        s.slo("db_write_p99_ms", round(q * 1000, 1),
              note="interpolated in its histogram bucket, as histogram_quantile")
    s.slo("loss", loss)


# ---- the Kafka backend (kafka and kworker branches) -------------------------------------

def require_kafka():
    """Skip unless this build has the Kafka backend with its worker role and tools/kafka-mock."""
    if not sluiced_has("queue"):
        raise Skip("needs the Kafka backend: this sluiced has no --queue option "
                   "(kafka/kworker branches not merged)")
    if not sluiced_has("kafka-group"):
        raise Skip("needs Kafka workers (--role worker on Kafka): this sluiced has no "
                   "--kafka-group option (kworker branch not merged)")
    if not os.access(os.path.join(OUT, "kafka-mock"), os.X_OK):
        raise Skip(f"tools/kafka-mock not built ({OUT}/kafka-mock missing: make)")


class KafkaMock:
    """tools/kafka-mock: a librdkafka mock cluster; cmd() sends one fault command."""

    TOPICS = "sluice.critical,sluice.normal,sluice.low"

    def __init__(self, scn, brokers=3, partitions=6, rf=3):
        self.brokers, self.partitions = brokers, partitions
        self.proc = subprocess.Popen(
            [os.path.join(OUT, "kafka-mock"), "--brokers", str(brokers), "--topics",
             self.TOPICS, "--partitions", str(partitions), "--rf", str(rf)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        scn.cleanups.append(self.stop)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("bootstrap="):
            raise Fail(f"kafka-mock did not start: {line!r}")
        self.bootstrap = line.split("=", 1)[1]

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        ans = self.proc.stdout.readline().strip()
        if ans != "ok":
            raise Fail(f"kafka-mock {line!r}: {ans or 'no answer'}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def kafka_ingress(scn, km, tenants, routes, extra=(), name="ingress"):
    return Sluiced(scn, tenants, routes, journal=False, name=name, threads=2,
                   extra=["--queue", "kafka", "--role", "ingress", "--kafka-brokers",
                          km.bootstrap] + list(extra))


def kafka_worker(scn, km, tenants, routes, pg, extra=(), name="worker"):
    # a killed member is noticed after session.timeout.ms: 6 s, the brokers' minimum
    return Sluiced(scn, tenants, routes, pg=pg, journal=False, name=name,
                   extra=["--queue", "kafka", "--role", "worker", "--kafka-brokers",
                          km.bootstrap, "--kafka", "kafka.session.timeout.ms=6000", "--kafka",
                          "kafka.heartbeat.interval.ms=300"] + list(extra))
