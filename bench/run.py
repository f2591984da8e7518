#!/usr/bin/python3
"""Lock benchmark driver: zkr against the raw-client floor (and, with
--peers, Curator and Kazoo) on one private ZooKeeper server, in one run.
Modes rw and sem do the same for zkr_rwlock (read-heavy and write-heavy
mixes) and zkr_semaphore, against raw floors and Curator's
InterProcessReadWriteLock and InterProcessSemaphoreV2. Mode many compares,
in one process each, 1,000 acquirers as one loop thread on the asynchronous
API against 1,000 threads on the blocking one (bench/many.c).

Every configuration runs each implementation in turn (order rotated per
repetition), so ratios compare runs minutes apart on the same server.
Clients (bench/zkr_bench, bench/peers/*) warm up, signal ready, and start
together at a common CLOCK_MONOTONIC instant written to a "go" file; all
timing happens inside them. Server-side request counts come from mntr.
Run through bench/run.sh, which builds first.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench", "zkr_bench")
TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
C_IMPLS = ("zkr", "zkr-nowait", "raw")


def four_letter(port, cmd):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(cmd.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data.decode()
            data += chunk


def mntr(port):
    out = {}
    for line in four_letter(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def proc_cpu_ns(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_NS


def host_busy():
    """(busy, total) jiffies of all CPUs so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def wait_quiet(limit=0.25, budget_s=10.0):
    """Waits (bounded) until the host is mostly idle: other tenants' load
    would otherwise land on one implementation's turn and not another's.
    Returns the busy fraction seen last."""
    deadline = time.monotonic() + budget_s
    while True:
        b0, t0 = host_busy()
        time.sleep(0.3)
        b1, t1 = host_busy()
        frac = (b1 - b0) / max(1, t1 - t0)
        if frac < limit or time.monotonic() > deadline:
            return frac


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


class Server:
    def __init__(self, work):
        self.dir = os.path.join(work, "zk")
        os.makedirs(self.dir)
        out = subprocess.run([os.path.join(ROOT, "tests", "zk-server.sh"), "start", self.dir],
                             check=True, capture_output=True, text=True).stdout.strip()
        self.hosts = out
        self.port = int(out.rsplit(":", 1)[1])
        with open(os.path.join(self.dir, "zk.pid")) as f:
            self.pid = int(f.read().strip())

    def stop(self):
        subprocess.run([os.path.join(ROOT, "tests", "zk-server.sh"), "stop", self.dir])


class Bench:
    def __init__(self, args, server, work, results):
        self.a = args
        self.srv = server
        self.work = work
        self.results = results
        self.seq = 0
        self.classpath = None
        if args.peers:
            cdir = os.path.join(work, "curator")
            subprocess.run([os.path.join(ROOT, "bench", "peers", "build-curator.sh"), cdir], check=True)
            with open(os.path.join(cdir, "classpath")) as f:
                self.classpath = f.read().strip()

    def command(self, impl, mode, path, extra):
        common = ["--mode", mode, "--connect", self.srv.hosts, "--path", path] + extra
        if impl in C_IMPLS or impl in ("naive", "raw-v2", "zkr-async"):
            return [BENCH, "--impl", impl] + common
        if impl == "curator" and mode in ("rw", "sem"):
            return ["java", "-XX:+UseSerialGC", "-Xmx256m", "-cp", self.classpath, "CuratorRecipesBench"] + common
        if impl == "curator":
            return ["java", "-XX:+UseSerialGC", "-Xmx256m", "-cp", self.classpath, "CuratorLockBench"] + common
        if impl == "kazoo":
            return ["/usr/bin/python3", os.path.join(ROOT, "bench", "peers", "kazoo_lock_bench.py")] + common
        raise ValueError(impl)

    def phase(self, impl, mode, k, extra, window_s=0.0, per_client=False):
        """Runs k clients to completion; returns their JSON and server deltas."""
        self.seq += 1
        d = os.path.join(self.work, "p%03d" % self.seq)
        os.makedirs(d)
        path = "/bench/%s-%s-%d-%d" % (mode, impl, k, self.seq)
        go = os.path.join(d, "go")
        procs = []
        for i in range(k):
            files = ["--client", str(i)] if per_client else []
            files += ["--ready", os.path.join(d, "ready%d" % i), "--go", go, "--out", os.path.join(d, "out%d.json" % i)]
            procs.append(subprocess.Popen(self.command(impl, mode, path, extra + files), cwd=d))
        deadline = time.monotonic() + 300
        while not all(os.path.exists(os.path.join(d, "ready%d" % i)) for i in range(k)):
            if any(p.poll() not in (None, 0) for p in procs) or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                raise RuntimeError("%s %s k=%d: a client failed before it was ready" % (impl, mode, k))
            time.sleep(0.01)
        busy = wait_quiet()
        m0, c0 = mntr(self.srv.port), proc_cpu_ns(self.srv.pid)
        start = time.monotonic_ns() + 500_000_000
        end = start + int(window_s * 1e9)
        with open(go + ".tmp", "w") as f:
            f.write("%d %d\n" % (start, end))
        os.replace(go + ".tmp", go)
        for p in procs:
            if p.wait(timeout=600) != 0:
                raise RuntimeError("%s %s k=%d: a client exited with %d" % (impl, mode, k, p.returncode))
        m1, c1 = mntr(self.srv.port), proc_cpu_ns(self.srv.pid)
        outs = []
        for i in range(k):
            with open(os.path.join(d, "out%d.json" % i)) as f:
                outs.append(json.load(f))
        shutil.copytree(d, os.path.join(self.results, "p%03d-%s-%s-%d" % (self.seq, mode, impl, k)))
        return {"outs": outs, "start": start, "end": end, "k": k,
                "packets": m1["zk_packets_received"] - m0["zk_packets_received"],
                "server_cpu_ns": c1 - c0, "busy_before": busy}


def uncontended(b, impl):
    r = b.phase(impl, "uncontended", 1, ["--count", str(b.a.n), "--warmup", "500"])
    o = r["outs"][0]
    # packets minus the session's close
    return {"n": o["count"], "loop_ns": o["loop_ns"], "acq": o["acq_ns"], "rel": o["rel_ns"], "cpu": o["cpu_ns"],
            "server_cpu": r["server_cpu_ns"], "reqs": r["packets"] - 1}


def pool_uncontended(runs):
    """Pools interleaved repetitions: every sample, every cycle counts."""
    n = sum(r["n"] for r in runs)
    acq = [x for r in runs for x in r["acq"]]
    rel = [x for r in runs for x in r["rel"]]
    return {"cycles/s": n / sum(r["loop_ns"] for r in runs) * 1e9, "acq p50 us": pct(acq, 50) / 1e3,
            "acq p99 us": pct(acq, 99) / 1e3, "rel p50 us": pct(rel, 50) / 1e3,
            "client CPU us/cycle": sum(r["cpu"] for r in runs) / n / 1e3,
            "server CPU us/cycle": sum(r["server_cpu"] for r in runs) / n / 1e3,
            "reqs/cycle": sum(r["reqs"] for r in runs) / n}


def contended(b, impl, k, hold_us=0):
    warm = max(100, min(1000, 8000 // k))
    r = b.phase(impl, "contended", k, ["--warmup", str(warm), "--hold-us", str(hold_us)], b.a.T)
    events = []
    for i, o in enumerate(r["outs"]):
        events += [(e, x, i) for e, x in zip(o["enter"], o["exit"])]
    events.sort()
    violations, latest = 0, 0
    for e, x, _ in events:
        if e < latest:
            violations += 1
        latest = max(latest, x)
    in_window = [e for e in events if r["start"] <= e[0] < r["end"]]
    return {"k": k, "total": len(events), "in_window": len(in_window),
            "handoff": [(n[0] - p[1]) / 1e6 for p, n in zip(events, events[1:]) if p[2] != n[2]],
            "per": [sum(1 for e in in_window if e[2] == i) for i in range(k)], "violations": violations,
            "reqs": r["packets"] - k, "cpu": sum(o["cpu_ns"] for o in r["outs"]), "server_cpu": r["server_cpu_ns"],
            "notes": sum(o.get("notifications", 0) for o in r["outs"]), "raw": impl == "raw"}


def pool_contended(runs, window_s):
    total = sum(r["total"] for r in runs)
    handoff = [x for r in runs for x in r["handoff"]]
    jain = []
    for r in runs:
        per, k = r["per"], r["k"]
        jain.append(sum(per) ** 2 / (k * sum(c * c for c in per)) if sum(per) else 0.0)
    return {"acq/s": sum(r["in_window"] for r in runs) / (window_s * len(runs)), "handoff p50 ms": pct(handoff, 50),
            "handoff p99 ms": pct(handoff, 99), "reqs/acq": sum(r["reqs"] for r in runs) / total,
            "client CPU us/acq": sum(r["cpu"] for r in runs) / total / 1e3,
            "server CPU us/acq": sum(r["server_cpu"] for r in runs) / total / 1e3, "fairness (min)": min(jain),
            "ME violations": sum(r["violations"] for r in runs), "acquisitions": total,
            "raw notifications/acq": sum(r["notes"] for r in runs) / total if runs[0]["raw"] else None}


def rwsem(b, impl, mode, k, extra, hold_us=0):
    """K processes loop acquire / hold / release on one read-write lock
    (mode rw: kind 0 read, 1 write) or one semaphore (mode sem: kind 2)."""
    warm = max(100, min(1000, 8000 // k))
    r = b.phase(impl, mode, k, ["--warmup", str(warm), "--hold-us", str(hold_us)] + extra, b.a.T, per_client=True)
    events = []
    for i, o in enumerate(r["outs"]):
        events += list(zip(o["enter"], o["exit"], o["kind"], o["acq_ns"]))
    events.sort()
    violations = 0
    if mode == "rw":
        # A write overlapping any hold, or a read overlapping a write.
        latest_any = latest_write = 0
        for e, x, kind, _ in events:
            if e < (latest_any if kind == 1 else latest_write):
                violations += 1
            latest_any = max(latest_any, x)
            if kind == 1:
                latest_write = max(latest_write, x)
    else:
        # More than max_leases holds at one instant.
        n_max = int(extra[extra.index("--max-leases") + 1])
        sweep = sorted([(e, 1) for e, _, _, _ in events] + [(x, -1) for _, x, _, _ in events],
                       key=lambda t: (t[0], t[1]))
        held = 0
        for _, d in sweep:
            held += d
            if held > n_max:
                violations += 1
    in_window = [ev for ev in events if r["start"] <= ev[0] < r["end"]]
    return {"k": k, "total": len(events), "in_window": len(in_window),
            "acq": {kind: [ev[3] for ev in events if ev[2] == kind] for kind in (0, 1, 2)},
            "reads": sum(1 for ev in events if ev[2] == 0),
            "violations": violations, "busy": r["busy_before"],
            "reqs": r["packets"] - k, "cpu": sum(o["cpu_ns"] for o in r["outs"]), "server_cpu": r["server_cpu_ns"]}


def pool_rwsem(runs, window_s, mode):
    total = sum(r["total"] for r in runs)
    per = [r["in_window"] / window_s for r in runs]
    res = {"ops/s": sum(per) / len(per), "ops/s per window": "%.0f-%.0f" % (min(per), max(per))}
    names = [(0, "read"), (1, "write")] if mode == "rw" else [(2, "acq")]
    for kind, name in names:
        lat = [x for r in runs for x in r["acq"][kind]]
        res[name + " p50 ms"] = pct(lat, 50) / 1e6
        res[name + " p99 ms"] = pct(lat, 99) / 1e6
    if mode == "rw":
        res["reads %"] = 100.0 * sum(r["reads"] for r in runs) / max(1, total)
    res.update({"reqs/op": sum(r["reqs"] for r in runs) / total,
                "client CPU us/op": sum(r["cpu"] for r in runs) / total / 1e3,
                "server CPU us/op": sum(r["server_cpu"] for r in runs) / total / 1e3,
                "violations": sum(r["violations"] for r in runs), "ops": total,
                "host busy % at start": 100.0 * statistics.mean(r["busy"] for r in runs)})
    return res


def rwsem_tables(b, impls, mode, k, extra, title):
    runs = {i: [] for i in impls}
    for rep in range(b.a.creps):
        for impl in rotate(impls, rep):
            runs[impl].append(rwsem(b, impl, mode, k, extra))
    rows = [(i, pool_rwsem(runs[i], b.a.T, mode)) for i in impls]
    keys = list(rows[0][1].keys())
    out = [table("%s: K = %d processes, hold 0, %d x %.1f s windows (interleaved)" % (title, k, b.a.creps, b.a.T),
                 rows, keys)]
    rk = [x for x in keys if x in ("ops/s", "read p50 ms", "write p50 ms", "acq p50 ms", "acq p99 ms",
                                   "reqs/op", "client CPU us/op", "server CPU us/op")]
    out.append(table("%s K = %d ratios" % (title, k), ratios(rows, "raw", rk) +
                     [r for r in ratios(rows, "raw-v2", rk) if r[0] != "raw / raw-v2"] +
                     [r for r in ratios(rows, "curator", rk) if r[0].startswith("zkr")], rk, "ratio"))
    return out


def has_semaphore():
    return subprocess.run([BENCH, "--has-semaphore"]).returncode == 0


def reentrant(b):
    r = b.phase("zkr", "reentrant", 1, ["--count", "100000"])
    o = r["outs"][0]
    return {"acq p50 ns": pct(o["acq_ns"], 50), "acq p99 ns": pct(o["acq_ns"], 99),
            "rel p50 ns": pct(o["rel_ns"], 50)}


def herd(b, impl):
    r = b.phase(impl, "herd", 1, ["--waiters", str(b.a.waiters)])
    o = r["outs"][0]
    res = {"releases": o["count"], "server fires/release mean": statistics.mean(o["server_fires"]),
           "max": max(o["server_fires"]), "first": o["server_fires"][0],
           "handoff p50 ms": pct(o["handoff_ns"], 50) / 1e6}
    if "client_notifications" in o:
        res["client notifications/release"] = statistics.mean(o["client_notifications"])
    return res


def scale(b):
    w = b.phase("zkr", "scale-waiters", 1, ["--waiters", "1000"])["outs"][0]
    h = b.phase("zkr", "scale-held", 1, ["--locks", str(b.a.locks)])["outs"][0]
    return {"waiters": w["waiters"], "library threads added by 1000 waiters": w["library_threads_added"],
            "RSS KiB per waiter (incl. its thread)": w["rss_kb_added"] / w["waiters"],
            "1000-waiter drain acq/s": w["waiters"] / w["drain_ns"] * 1e9,
            "locks held by one session": h["locks"], "RSS bytes per held lock": h["rss_kb_added"] * 1024 / h["locks"],
            "acquire-all acq/s": h["locks"] / h["acquire_all_ns"] * 1e9}


MANY_IMPLS = ("zkr-async", "zkr")


def many(b, impl):
    """N acquirers on K lock paths in one process and one session: one loop
    thread with the asynchronous API (zkr-async) or N threads with the
    blocking one (zkr). bench/many.c tells the workload."""
    extra = ["--acquirers", str(b.a.many_n), "--paths", str(b.a.many_k), "--hold-us", str(b.a.many_hold_us),
             "--warmup", "1", "--stack-kb", str(b.a.many_stack_kb)]
    r = b.phase(impl, "many", 1, extra, b.a.many_T)
    o = r["outs"][0]
    if o["violations"] > 0:
        raise RuntimeError("many %s: %d mutual exclusion violations (raw data: %s)" %
                           (impl, o["violations"], b.results))
    return {"in_window": sum(o["per_acquirer"]), "per": o["per_acquirer"], "total": o["count"],
            "acq": o["acq_ns"], "cpu": o["cpu_ns"], "user": o["user_ns"], "sys": o["sys_ns"],
            "switches": o["context_switches"], "violations": o["violations"], "rss_kb": o["rss_kb"],
            "threads": o["threads"], "reqs": r["packets"] - 1, "server_cpu": r["server_cpu_ns"],
            "busy": r["busy_before"]}


def pool_many(runs, window_s):
    total = sum(r["total"] for r in runs)
    acq = [x for r in runs for x in r["acq"]]
    per = [r["in_window"] / window_s for r in runs]
    jain = [sum(r["per"]) ** 2 / (len(r["per"]) * sum(c * c for c in r["per"])) if sum(r["per"]) else 0.0
            for r in runs]
    return {"acq/s": sum(per) / len(per), "acq/s per window": "%.0f-%.0f" % (min(per), max(per)),
            "acq p50 ms": pct(acq, 50) / 1e6, "acq p99 ms": pct(acq, 99) / 1e6,
            "client CPU us/acq": sum(r["cpu"] for r in runs) / total / 1e3,
            "user us/acq": sum(r["user"] for r in runs) / total / 1e3,
            "sys us/acq": sum(r["sys"] for r in runs) / total / 1e3,
            "ctx switches/acq": sum(r["switches"] for r in runs) / total,
            "server CPU us/acq": sum(r["server_cpu"] for r in runs) / total / 1e3,
            "reqs/acq": sum(r["reqs"] for r in runs) / total, "fairness (min)": min(jain),
            "threads": max(r["threads"] for r in runs), "RSS MiB": max(r["rss_kb"] for r in runs) / 1024.0,
            "violations": sum(r["violations"] for r in runs), "acquisitions": total,
            "host busy % at start": 100.0 * statistics.mean(r["busy"] for r in runs)}


def many_tables(b):
    a = b.a
    runs = {i: [] for i in MANY_IMPLS}
    for rep in range(a.creps):
        for impl in rotate(list(MANY_IMPLS), rep):
            runs[impl].append(many(b, impl))
    names = {"zkr-async": "async, 1 loop thread", "zkr": "blocking, %d threads" % a.many_n}
    rows = [(names[i], pool_many(runs[i], a.many_T)) for i in MANY_IMPLS]
    keys = list(rows[0][1].keys())
    title = ("Many acquirers: %d acquirers, %d lock paths, one session, hold %d us, %d x %.1f s windows "
             "(interleaved)" % (a.many_n, a.many_k, a.many_hold_us, a.creps, a.many_T))
    rk = ["acq/s", "acq p50 ms", "acq p99 ms", "client CPU us/acq", "user us/acq", "sys us/acq",
          "ctx switches/acq", "server CPU us/acq", "reqs/acq", "RSS MiB"]
    ratio = [("async / threads", {k: rows[0][1][k] / rows[1][1][k] if rows[1][1][k] else None for k in rk})]
    return [table(title, rows, keys), table("Many acquirers ratios", ratio, rk, "ratio")]


def rotate(impls, rep):
    k = rep % len(impls)
    return impls[k:] + impls[:k]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.0f" % v if abs(v) >= 100 else "%.2f" % v
    return str(v)


def table(title, rows, keys, first="impl"):
    lines = ["", "### " + title, "", "| %s | %s |" % (first, " | ".join(keys)), "|---" * (len(keys) + 1) + "|"]
    for name, vals in rows:
        lines.append("| %s | %s |" % (name, " | ".join(fmt(vals.get(k)) for k in keys)))
    return "\n".join(lines)


def ratios(rows, base, keys):
    ref = dict(rows).get(base)
    if ref is None:
        return []
    res = []
    for name, vals in rows:
        if name == base:
            continue
        res.append(("%s / %s" % (name, base),
                    {k: (vals[k] / ref[k] if vals.get(k) and ref.get(k) else None) for k in keys}))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers", action="store_true", help="add Curator InterProcessMutex and Kazoo Lock (and Curator's "
                    "InterProcessReadWriteLock and InterProcessSemaphoreV2 for rw and sem)")
    ap.add_argument("--quick", action="store_true", help="short smoke run (1 rep, small counts)")
    ap.add_argument("--modes", default="uncontended,reentrant,contended,herd,scale,rw,sem,many")
    ap.add_argument("--ks", default="2,8,32")
    ap.add_argument("--reps", type=int, default=8, help="uncontended repetitions per implementation")
    ap.add_argument("-n", type=int, default=500, help="uncontended cycles per repetition")
    ap.add_argument("--creps", type=int, default=3, help="contended repetitions per implementation and K")
    ap.add_argument("-T", type=float, default=3.0, help="contended window, seconds")
    ap.add_argument("--rw-k", type=int, default=8, help="processes on the read-write lock")
    ap.add_argument("--read-pcts", default="95,5", help="read-write mixes: percent reads (read-heavy, write-heavy)")
    ap.add_argument("--sem-k", type=int, default=8, help="processes on the semaphore")
    ap.add_argument("--max-leases", type=int, default=4, help="semaphore N")
    ap.add_argument("--waiters", type=int, default=50)
    ap.add_argument("--locks", type=int, default=10000)
    ap.add_argument("--many-n", type=int, default=1000, help="many: concurrent acquirers")
    ap.add_argument("--many-k", type=int, default=100, help="many: lock paths they draw from")
    ap.add_argument("--many-hold-us", type=int, default=0, help="many: hold time")
    ap.add_argument("--many-T", type=float, default=5.0, help="many: window, seconds (repetitions: --creps)")
    ap.add_argument("--many-stack-kb", type=int, default=64, help="many: stack of each blocking thread")
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results", time.strftime("%Y%m%d-%H%M%S")))
    a = ap.parse_args()
    if a.quick:
        a.reps, a.n, a.creps, a.T, a.locks, a.many_T = 2, 200, 1, 1.5, 1000, 2.0
    modes = a.modes.split(",")
    ks = [int(k) for k in a.ks.split(",")]
    impls = list(C_IMPLS) + (["curator", "kazoo"] if a.peers else [])
    os.makedirs(a.results, exist_ok=True)
    work = tempfile.mkdtemp(prefix="zkr-bench.")
    srv = Server(work)
    report = ["# zkr lock benchmark, %s" % time.strftime("%Y-%m-%d %H:%M"), "",
              "Host: %d CPUs, %s; one standalone ZooKeeper (%s) on loopback, fsync on. Implementations "
              "take turns (order rotated per repetition); figures pool all repetitions." %
              (os.cpu_count(), os.uname().release, four_letter(srv.port, "srvr").splitlines()[0])]
    t0 = time.monotonic()
    try:
        b = Bench(a, srv, work, a.results)
        # A fresh server JVM is slow until JIT-compiled: warm it, unreported.
        for _ in range(2 if not a.quick else 1):
            b.phase("raw", "contended", 4, ["--warmup", "200"], 2.0)
        if "uncontended" in modes:
            runs = {i: [] for i in impls}
            for rep in range(a.reps):
                for impl in rotate(impls, rep):
                    runs[impl].append(uncontended(b, impl))
            rows = [(i, pool_uncontended(runs[i])) for i in impls]
            keys = list(rows[0][1].keys())
            report.append(table("Uncontended: one client, %d x %d acquire+release cycles (interleaved)" % (a.reps, a.n),
                                rows, keys))
            report.append(table("Uncontended ratios", ratios(rows, "raw", keys) +
                                [r for r in ratios(rows, "curator", keys) if r[0].startswith("zkr")] +
                                [r for r in ratios(rows, "kazoo", keys) if r[0].startswith("zkr")], keys, "ratio"))
        if "reentrant" in modes:
            report.append(table("Reentrant re-acquire (zkr, by the holding thread)", [("zkr", reentrant(b))],
                                ["acq p50 ns", "acq p99 ns", "rel p50 ns"]))
        if "contended" in modes:
            for k in ks:
                runs = {i: [] for i in impls}
                for rep in range(a.creps):
                    for impl in rotate(impls, rep):
                        runs[impl].append(contended(b, impl, k))
                rows = [(i, pool_contended(runs[i], a.T)) for i in impls]
                keys = list(rows[0][1].keys())
                report.append(table("Contended: K = %d processes, hold 0, %d x %.1f s windows (interleaved)" %
                                    (k, a.creps, a.T), rows, keys))
                rk = ["acq/s", "handoff p50 ms", "reqs/acq", "client CPU us/acq", "server CPU us/acq"]
                report.append(table("Contended K = %d ratios" % k, ratios(rows, "raw", rk) +
                                    [r for r in ratios(rows, "curator", rk) if r[0].startswith("zkr")] +
                                    [r for r in ratios(rows, "kazoo", rk) if r[0].startswith("zkr")], rk, "ratio"))
            # Mutual exclusion with a hold long enough to see overlaps.
            rows = [(i, pool_contended([contended(b, i, 8, hold_us=20)], a.T)) for i in impls]
            report.append(table("Mutual exclusion check: K = 8, 20 us busy hold", rows,
                                ["acquisitions", "ME violations", "acq/s"]))
        if "herd" in modes:
            rows = [(i, herd(b, i)) for i in ("zkr", "raw", "naive")]
            report.append(table("Herd: 1 holder + %d queued waiters, each its own session" % a.waiters, rows,
                                ["releases", "server fires/release mean", "max", "first",
                                 "client notifications/release", "handoff p50 ms"]))
        rimpls = ["zkr", "raw"] + (["curator"] if a.peers else [])
        if "rw" in modes:
            for p in [int(x) for x in a.read_pcts.split(",")]:
                report += rwsem_tables(b, rimpls, "rw", a.rw_k, ["--read-pct", str(p)],
                                       "Read-write lock, %d%% reads" % p)
        if "sem" in modes:
            if has_semaphore():
                report += rwsem_tables(b, rimpls[:2] + ["raw-v2"] + rimpls[2:], "sem", a.sem_k, ["--max-leases", str(a.max_leases)],
                                       "Semaphore, N = %d" % a.max_leases)
            else:
                report.append("\n(sem skipped: this libzkrecipes has no zkr_semaphore)")
        if "many" in modes:
            report += many_tables(b)
        if "scale" in modes:
            s = scale(b)
            report.append(table("Scale (zkr)", [(k, {"value": v}) for k, v in s.items()], ["value"], "measure"))
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    report.append("\nWall time %.0f s. Raw data: %s" % (time.monotonic() - t0, a.results))
    text = "\n".join(report) + "\n"
    with open(os.path.join(a.results, "table.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
