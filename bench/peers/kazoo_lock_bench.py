#!/usr/bin/python3
"""One client process of the lock benchmark, using Kazoo's Lock recipe.

Same protocol and command line as the C client and CuratorLockBench.java.
"""
import json
import os
import sys
import time

from kazoo.client import KazooClient

USAGE = ("usage: kazoo_lock_bench.py --mode uncontended|contended --connect HOSTS"
         " --path PATH [--count N] [--warmup W] [--hold-us U]"
         " --ready FILE --go FILE --out FILE")
NUMERIC = {"--count": 2000, "--warmup": 500, "--hold-us": 0}
STRINGS = ("--mode", "--connect", "--path", "--ready", "--go", "--out")


def usage(msg):
    print("kazoo_lock_bench: %s\n%s" % (msg, USAGE), file=sys.stderr)
    sys.exit(2)


def parse(argv):
    # Hand-rolled rather than argparse: argparse accepts prefixes of flags,
    # while the C client rejects anything not spelled out exactly.
    opts = dict(NUMERIC)
    it = iter(argv)
    for flag in it:
        if flag not in NUMERIC and flag not in STRINGS:
            usage("unknown flag " + flag)
        val = next(it, None)
        if val is None:
            usage("missing value for " + flag)
        if flag in NUMERIC:
            if not (val.isascii() and val.isdigit()) or int(val) > 2**31 - 1:
                usage("bad value for %s: %s" % (flag, val))
            val = int(val)
        opts[flag] = val
    if opts.get("--mode") not in ("uncontended", "contended"):
        usage("--mode must be uncontended or contended")
    missing = [f for f in STRINGS if f not in opts]
    if missing:
        usage("missing " + ", ".join(missing))
    return opts


def wait_go(path):
    # The driver may still be writing the file: only a complete line counts.
    while True:
        try:
            with open(path) as f:
                data = f.read()
        except FileNotFoundError:
            data = ""
        if "\n" in data:
            fields = data.split("\n", 1)[0].split()
            if len(fields) != 2:
                raise ValueError("bad go file: %r" % data)
            return int(fields[0]), int(fields[1])
        time.sleep(0.001)


TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def cpu_ns():
    # utime+stime of all threads (fields 14, 15); split after the last ')'
    # because the command name may contain spaces.
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_NS


def run(o):
    now = time.monotonic_ns
    contended = o["--mode"] == "contended"
    client = KazooClient(hosts=o["--connect"], timeout=10)
    try:
        client.start(timeout=15)
    except Exception as e:
        client.stop()  # ends kazoo's background reconnect attempts
        raise RuntimeError("not connected to %s after 15 s (%s)" % (o["--connect"], e))
    try:
        lock = client.Lock(o["--path"])
        # Contended warm-up uses a side path so it does not steal turns from
        # peers already measuring on PATH.
        warm = client.Lock(o["--path"] + "-warm") if contended else lock
        for _ in range(o["--warmup"]):
            warm.acquire()
            warm.release()
        open(o["--ready"], "w").close()

        start, end = wait_go(o["--go"])
        while start - now() > 2_000_000:
            time.sleep(0.001)
        while now() < start:
            pass

        res = {"impl": "kazoo", "mode": o["--mode"]}
        cpu0 = cpu_ns()
        if not contended:
            acq, rel = [], []
            first = last = 0
            for i in range(o["--count"]):
                t0 = now()
                lock.acquire()
                t1 = now()
                lock.release()
                t2 = now()
                acq.append(t1 - t0)
                rel.append(t2 - t1)
                if i == 0:
                    first = t0
                last = t2
            cpu = cpu_ns() - cpu0
            res.update(acq_ns=acq, rel_ns=rel, loop_ns=last - first, cpu_ns=cpu, count=len(acq))
        else:
            enter, exit_ = [], []
            hold_ns = o["--hold-us"] * 1000
            while now() < end:
                lock.acquire()
                t_in = now()
                while now() < t_in + hold_ns:
                    pass
                t_out = now()
                lock.release()
                enter.append(t_in)
                exit_.append(t_out)
            cpu = cpu_ns() - cpu0
            res.update(enter=enter, exit=exit_, cpu_ns=cpu, count=len(enter))

        tmp = o["--out"] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f)
            f.write("\n")
        os.replace(tmp, o["--out"])
    finally:
        client.stop()
        client.close()


def main():
    opts = parse(sys.argv[1:])
    try:
        run(opts)
    except Exception as e:
        print("kazoo_lock_bench: %s" % (e,), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
