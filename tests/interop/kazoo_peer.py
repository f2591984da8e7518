"""The Kazoo side of the interoperability tests (tests/test_interop.sh).

    /usr/bin/python3 kazoo_peer.py MODE --hosts H --path P --dir D --name NAME
        [--iterations N] [--hold-ms MS] [--session-ms MS] [--timeout-ms MS]

Same command line, steps, marker files and log as tests/interop/zkr_peer.c
(read its header). MODE and the Kazoo recipe it drives, each told the
Curator/zkr node names with extra_lock_patterns (Kazoo 2.7.1 and later;
without them Kazoo ignores "_c_<uuid>-lock-<seq>" nodes and takes the lock
beside their holder):

    mutex  Lock(extra_lock_patterns=("-lock-",))                    kind X
    mutex-default  Lock() (no extra patterns): the negative control  kind X
    read   ReadLock(extra_lock_patterns=("__WRIT__",))              kind R
    write  WriteLock(extra_lock_patterns=("__WRIT__", "__READ__"))  kind W

Kazoo 2.8 (Debian 12) ReadLock deadlocks beside writers, Kazoo processes
alone included (kazoo#649, fixed in 2.9.0): the driver runs "read" only
with kazoo 2.9 or later.

Exit status: 0 every iteration done without overlap, 3 overlap seen,
1 error, 2 usage.
"""
import argparse
import errno
import glob
import logging
import os
import sys
import time

from kazoo.client import KazooClient
from kazoo.recipe.lock import Lock, ReadLock, WriteLock

RECIPES = {
    "mutex": (Lock, ("-lock-",), "X"),
    "read": (ReadLock, ("__WRIT__",), "R"),
    "write": (WriteLock, ("__WRIT__", "__READ__"), "W"),
    # the control: a default Lock, blind to the others' nodes
    "mutex-default": (Lock, (), "X"),
}


def claim(path):
    """Creates path with O_CREAT|O_EXCL; False if it already exists."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        return True
    except OSError as e:
        if e.errno != errno.EEXIST:
            raise
        return False


def enter(kind, d, name):
    """Claims the marker of kind; returns (marker or None, overlap 0/1)."""
    w = os.path.join(d, "held.w")
    if kind == "R":
        r = os.path.join(d, "held.r." + name)
        if not claim(r):
            raise RuntimeError(r + " exists: two peers named " + name)
        return r, int(os.path.exists(w))
    if not claim(w):
        return None, 1
    if kind == "W" and glob.glob(os.path.join(d, "held.r.*")):
        return w, 1
    return w, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=sorted(RECIPES))
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--hold-ms", type=int, default=5)
    ap.add_argument("--session-ms", type=int, default=2000)
    ap.add_argument("--timeout-ms", type=int, default=10000)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    timeout = a.timeout_ms / 1000.0
    cls, extra, kind = RECIPES[a.mode]

    zk = KazooClient(hosts=a.hosts, timeout=a.session_ms / 1000.0)
    zk.start(timeout=timeout)
    lock = cls(zk, a.path, identifier=a.name, extra_lock_patterns=extra)

    open(os.path.join(a.dir, a.name + ".ready"), "w").close()
    deadline = time.monotonic() + 2 * timeout
    while not os.path.exists(os.path.join(a.dir, "go")):
        if time.monotonic() > deadline:
            sys.stderr.write("%s: no go file within %d ms\n" % (a.name, 2 * a.timeout_ms))
            return 1
        time.sleep(0.005)

    done = overlaps = 0
    try:
        with open(os.path.join(a.dir, a.name + ".log"), "w") as log:
            while done < a.iterations:
                if not lock.acquire(timeout=timeout):
                    raise RuntimeError("%s: timed out" % a.mode)
                t_enter = time.monotonic_ns()
                marker, overlap = enter(kind, a.dir, a.name)
                overlaps += overlap
                time.sleep(a.hold_ms / 1000.0)
                t_exit = time.monotonic_ns()
                if marker is not None:
                    os.unlink(marker)
                log.write("%d %d %s %s %s\n" % (t_enter, t_exit, kind, a.name, lock.node[-10:]))
                log.flush()
                lock.release()
                done += 1
    except Exception as e:  # reported, then the RESULT line still follows
        sys.stderr.write("%s: %s iteration %d: %r\n" % (a.name, a.mode, done + 1, e))
    zk.stop()
    zk.close()
    print("RESULT name=%s mode=%s iterations=%d overlaps=%d" % (a.name, a.mode, done, overlaps))
    if done != a.iterations:
        return 1
    return 3 if overlaps else 0


if __name__ == "__main__":
    sys.exit(main())
