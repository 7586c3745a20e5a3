# SPDX-License-Identifier: MIT
"""rpt_dbchaos.py -- database failures for the report's scenarios (db_failover,
chaos_db_partition); Python 3 standard library only, on top of scn.py

  Standby      a streaming replica of a scn.Postgres (pg_basebackup), synchronous or not;
               detach() stops its streaming (it falls behind), promote() makes it primary
  kill_server  SIGKILL a server's postmaster and every child at once (the machine died)
  Netns        a network namespace joined to ours by a veth, a PostgreSQL inside it, and
               partition()/heal(): nftables there drops every packet (dropped, not refused)
  first_stored_after  seconds from a wall-clock instant to the first event stored after it

The C test harness does the same for the tests (tests/lib/pgharness.c, tests/lib/dbchaos.c);
these scenarios drive the real daemon with the load generator instead, so "lost" means keys
answered 202 that the (new) primary does not have.
"""
import os
import shutil
import subprocess
import time

import scn

SU = ["runuser", "-u", "postgres", "--"]


def run(args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode:
        raise scn.Fail(f"{' '.join(args[:6])}: {(r.stderr or r.stdout).strip()[-300:]}")
    return r


class Standby(scn.Postgres):
    """A streaming standby of primary on its own port (psql/value/load_answers inherited)."""

    def __init__(self, s, primary, name="standby", sync=False):
        self.dir = os.path.join(s.tmp, name)
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres")
        self.name, self.primary = name, primary
        self.port = scn.free_port()
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=sluice user=postgres"
        run(SU + [f"{scn.PGBIN}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
                  "-U", "postgres", "-D", f"{self.dir}/data", "-X", "stream", "-c", "fast",
                  "--no-sync"])
        open(f"{self.dir}/data/standby.signal", "w").close()
        shutil.chown(f"{self.dir}/data/standby.signal", "postgres")
        # in postgresql.auto.conf, not on the command line: detach() changes it with ALTER SYSTEM
        with open(f"{self.dir}/data/postgresql.auto.conf", "a") as f:
            f.write(f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres "
                    f"application_name={name}'\n")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                f"-c shared_buffers=256MB -c max_wal_size=2GB -c max_connections=200")
        run(SU + [f"{scn.PGBIN}/pg_ctl", "-D", f"{self.dir}/data", "-l",
                  f"{self.dir}/server.log", "-w", "-t", "60", "-o", opts, "start"])
        s.cleanups.append(self.stop)
        if sync:
            primary.psql(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
            primary.psql("SELECT pg_reload_conf()")
        want = "sync" if sync else "async"
        if not scn.wait_until(lambda: primary.value(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = "
                f"'{name}' AND state = 'streaming' AND sync_state = '{want}'") == 1, 60):
            raise scn.Fail(f"standby {name} not streaming ({want}) within 60 s")

    def detach(self):
        """Stop streaming: the standby falls behind an asynchronous primary from now on."""
        self.psql("ALTER SYSTEM SET primary_conninfo = ''")
        self.psql("SELECT pg_reload_conf()")
        if not scn.wait_until(lambda: self.primary.value(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = "
                f"'{self.name}'") == 0, 30, 0.1):
            raise scn.Fail("the standby kept streaming after primary_conninfo = ''")

    def promote(self):
        run(SU + [f"{scn.PGBIN}/pg_ctl", "-D", f"{self.dir}/data", "-w", "-t", "60",
                  "promote"])


def kill_server(pg):
    """SIGKILL the postmaster and its children in one call; wait until all are gone."""
    with open(f"{pg.dir}/data/postmaster.pid") as f:
        pid = int(f.readline())
    kids = run(["pgrep", "-P", str(pid)], check=False).stdout.split()
    pids = [pid] + [int(k) for k in kids]
    for p in pids:
        try:
            os.kill(p, 9)
        except ProcessLookupError:
            pass

    def gone():
        for p in pids:
            try:
                os.kill(p, 0)
                return False
            except ProcessLookupError:
                pass
        return True
    if not scn.wait_until(gone, 10, 0.05):
        raise scn.Fail(f"postmaster {pid} survived SIGKILL")


def first_stored_after(pg, wall, prefix):
    """Seconds from wall (time.time()) to the first event with key prefix stored after it."""
    v = pg.value("SELECT coalesce(extract(epoch FROM min(stored_at)), -1) FROM events WHERE "
                 f"idempotency_key LIKE '{prefix}-%' AND stored_at > to_timestamp({wall})",
                 -1)
    return round(v - wall, 2) if v > 0 else None


class Netns:
    """A namespace with a veth to ours (a /30 of 172.31.0.0/16) and a PostgreSQL in it."""

    def __init__(self, s):
        self.s = s
        pid = os.getpid()
        self.ns, self.if_host, self.if_ns = f"slrp{pid}", f"srh{pid % 100000}", f"srn{pid % 100000}"
        idx = (pid * 4) % 16384
        for _ in range(64):
            b, d = idx >> 6, (idx & 63) * 4
            if not run(["ip", "-4", "-o", "addr", "show", "to", f"172.31.{b}.{d}/30"]).stdout:
                break
            idx = (idx + 1) % 16384
        self.ip_host, self.ip_ns = f"172.31.{b}.{d + 1}", f"172.31.{b}.{d + 2}"
        s.cleanups.append(self.destroy)
        run(["ip", "netns", "add", self.ns])
        run(["ip", "link", "add", self.if_host, "type", "veth", "peer", "name", self.if_ns,
             "netns", self.ns])
        run(["ip", "addr", "add", f"{self.ip_host}/30", "dev", self.if_host])
        run(["ip", "link", "set", self.if_host, "up"])
        for cmd in (["addr", "add", f"{self.ip_ns}/30", "dev", self.if_ns],
                    ["link", "set", self.if_ns, "up"], ["link", "set", "lo", "up"]):
            run(["ip", "-n", self.ns] + cmd)
        self.partitioned = False

    def postgres(self):
        """PostgreSQL started inside the namespace, listening on ip_ns (and its socket)."""
        s = self.s
        pg = scn.Postgres.__new__(scn.Postgres)
        pg.dir = os.path.join(s.tmp, "pgns")
        os.makedirs(pg.dir)
        shutil.chown(pg.dir, "postgres")
        pg.port = 5432
        pg.conninfo = f"host={self.ip_ns} port={pg.port} dbname=sluice user=postgres"
        run(SU + [f"{scn.PGBIN}/initdb", "-D", f"{pg.dir}/data", "-A", "trust", "-U",
                  "postgres", "-E", "UTF8", "--no-sync"])
        with open(f"{pg.dir}/data/pg_hba.conf", "a") as f:
            f.write("host all all samenet trust\n")
        opts = (f"-p {pg.port} -k {pg.dir} -c listen_addresses={self.ip_ns} "
                "-c shared_buffers=256MB -c max_wal_size=2GB -c max_connections=200")
        run(["ip", "netns", "exec", self.ns] + SU +
            [f"{scn.PGBIN}/pg_ctl", "-D", f"{pg.dir}/data", "-l", f"{pg.dir}/server.log", "-w",
             "-t", "60", "-o", opts, "start"])
        s.cleanups.append(pg.stop)
        run(SU + ["createdb", "-h", pg.dir, "-p", str(pg.port), "-U", "postgres", "sluice"])

        def psql(sql):  # over the unix socket: still reachable during a partition
            r = run(["psql", "-h", pg.dir, "-p", str(pg.port), "-U", "postgres", "-qtAX",
                     "-v", "ON_ERROR_STOP=1", "sluice", "-c", sql], check=False)
            if r.returncode:
                raise scn.Fail(f"psql: {sql[:80]}: {r.stderr.strip()}")
            return r.stdout.strip()
        pg.psql = psql
        return pg

    def partition(self):
        run(["ip", "netns", "exec", self.ns, "nft",
             "add table inet dbchaos; "
             "add chain inet dbchaos in { type filter hook input priority 0; policy accept; }; "
             "add chain inet dbchaos out { type filter hook output priority 0; policy accept; }; "
             f"add rule inet dbchaos in iifname \"{self.if_ns}\" drop; "
             f"add rule inet dbchaos out oifname \"{self.if_ns}\" drop"])
        self.partitioned = True

    def heal(self):
        if self.partitioned:
            run(["ip", "netns", "exec", self.ns, "nft", "delete", "table", "inet", "dbchaos"])
            self.partitioned = False

    def destroy(self):
        run(["ip", "link", "del", self.if_host], check=False)
        run(["ip", "netns", "del", self.ns], check=False)
