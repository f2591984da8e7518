/*
 * The Curator side of the interoperability tests (tests/test_interop.sh).
 *
 *   java -cp DIR:JARS InteropPeer MODE --hosts H --path P --dir D --name NAME
 *        [--iterations N] [--hold-ms MS] [--session-ms MS] [--timeout-ms MS] [--leases N]
 *
 * Same command line, steps, marker files and log as tests/interop/zkr_peer.c
 * (read its header): wait for D/go, then N times acquire, claim a marker,
 * hold, log "ENTER_NS EXIT_NS KIND NAME SEQ", release; print a RESULT line.
 *
 * MODE and the Curator 5.4 recipe it drives:
 *   mutex  InterProcessMutex            marker kind X (D/held.w)
 *   elect  LeaderLatch, one per term    marker kind X
 *   read   InterProcessReadWriteLock.readLock()   kind R (D/held.r.NAME, then D/held.w must not exist)
 *   write  InterProcessReadWriteLock.writeLock()  kind W (D/held.w, then no D/held.r.* may exist)
 *   sema   InterProcessSemaphoreV2(--leases N)    kind L (one of D/held.l.0 .. held.l.{N-1})
 *   dbarrier  DistributedDoubleBarrier(P/ITERATION, --count N): acquire enters, release
 *             leaves; kind B, no marker; SEQ is the time enter was called (ns)
 *   bset, bremove, bwait  DistributedBarrier(P): one step as the acquire; kind B
 *
 * Exit status: 0 every iteration done without overlap, 3 overlap seen,
 * 1 error, 2 usage.
 */
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessLock;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.RetryNTimes;

public class InteropPeer {
    /** One recipe: acquire returns the node's sequence suffix ("-" if unknown) or throws. */
    interface Recipe {
        String acquire() throws Exception;

        void release() throws Exception;
    }

    /** InterProcessMutex with its node path visible (getLockPath is protected). */
    static final class Mutex extends InterProcessMutex {
        Mutex(CuratorFramework c, String path) {
            super(c, path);
        }

        String node() {
            return getLockPath();
        }
    }

    static final Map<String, String> opt = new HashMap<>();
    static Path dir;
    static String name;
    static long timeoutMs;
    static int overlaps;

    static int intOpt(String k, int dflt) {
        return opt.containsKey(k) ? Integer.parseInt(opt.get(k)) : dflt;
    }

    static String seqOf(String node) {
        return node != null && node.length() >= 10 ? node.substring(node.length() - 10) : "-";
    }

    static Recipe recipe(String mode, CuratorFramework c, String path) {
        switch (mode) {
        case "mutex": {
            Mutex m = new Mutex(c, path);
            return new Recipe() {
                public String acquire() throws Exception {
                    if (!m.acquire(timeoutMs, TimeUnit.MILLISECONDS)) throw new Exception("mutex: timed out");
                    return seqOf(m.node());
                }

                public void release() throws Exception {
                    m.release();
                }
            };
        }
        case "elect":
            return new Recipe() {
                LeaderLatch latch;

                public String acquire() throws Exception {
                    latch = new LeaderLatch(c, path, name);
                    latch.start();
                    if (!latch.await(timeoutMs, TimeUnit.MILLISECONDS)) throw new Exception("elect: timed out");
                    if (!latch.hasLeadership()) throw new Exception("elect: await returned without leadership");
                    return seqOf(latch.getOurPath());
                }

                public void release() throws Exception {
                    latch.close();
                }
            };
        case "read":
        case "write": {
            InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c, path);
            InterProcessLock l = mode.equals("read") ? rw.readLock() : rw.writeLock();
            return new Recipe() {
                public String acquire() throws Exception {
                    if (!l.acquire(timeoutMs, TimeUnit.MILLISECONDS)) throw new Exception(mode + ": timed out");
                    return "-";
                }

                public void release() throws Exception {
                    l.release();
                }
            };
        }
        case "sema": {
            InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(c, path, intOpt("--leases", 1));
            return new Recipe() {
                Lease lease;

                public String acquire() throws Exception {
                    lease = sem.acquire(timeoutMs, TimeUnit.MILLISECONDS);
                    if (lease == null) throw new Exception("sema: timed out");
                    return seqOf(lease.getNodeName());
                }

                public void release() throws Exception {
                    sem.returnLease(lease);
                }
            };
        }
        case "dbarrier":
            return new Recipe() {
                DistributedDoubleBarrier db;
                int round;

                public String acquire() throws Exception {
                    long called = System.nanoTime();
                    db = new DistributedDoubleBarrier(c, path + "/" + round++, intOpt("--count", 2));
                    if (!db.enter(timeoutMs, TimeUnit.MILLISECONDS)) throw new Exception("dbarrier: enter timed out");
                    return Long.toString(called);
                }

                public void release() throws Exception {
                    if (!db.leave(timeoutMs, TimeUnit.MILLISECONDS)) throw new Exception("dbarrier: leave timed out");
                }
            };
        case "bset":
        case "bremove":
        case "bwait": {
            DistributedBarrier b = new DistributedBarrier(c, path);
            return new Recipe() {
                public String acquire() throws Exception {
                    if (mode.equals("bset")) b.setBarrier();
                    else if (mode.equals("bremove")) b.removeBarrier();
                    else if (!b.waitOnBarrier(timeoutMs, TimeUnit.MILLISECONDS)) throw new Exception("bwait: timed out");
                    return "-";
                }

                public void release() {}
            };
        }
        default:
            return null;
        }
    }

    static char kindOf(String mode) {
        switch (mode) {
        case "read":
            return 'R';
        case "write":
            return 'W';
        case "sema":
            return 'L';
        case "dbarrier":
        case "bset":
        case "bremove":
        case "bwait":
            return 'B';
        default:
            return 'X';
        }
    }

    static boolean claim(Path p) throws IOException {
        try {
            Files.createFile(p); // CREATE_NEW: open(O_CREAT|O_EXCL)
            return true;
        } catch (FileAlreadyExistsException e) {
            return false;
        }
    }

    /** Claims the marker of kind k; returns it, or null on an overlap (counted). */
    static Path enter(char k, int leases) throws IOException {
        Path w = dir.resolve("held.w");
        switch (k) {
        case 'R': {
            Path r = dir.resolve("held.r." + name);
            if (!claim(r)) throw new IOException(r + " exists: two peers named " + name);
            if (Files.exists(w)) overlaps++;
            return r;
        }
        case 'L':
            for (int i = 0; i < leases; i++) {
                Path l = dir.resolve("held.l." + i);
                if (claim(l)) return l;
            }
            overlaps++;
            return null;
        case 'B': // a barrier excludes nobody
            return null;
        default: // X, W
            if (!claim(w)) {
                overlaps++;
                return null;
            }
            if (k == 'W') {
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "held.r.*")) {
                    if (ds.iterator().hasNext()) overlaps++;
                }
            }
            return w;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length % 2 != 1) usage();
        String mode = args[0];
        for (int i = 1; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) usage();
            opt.put(args[i], args[i + 1]);
        }
        if (!opt.containsKey("--hosts") || !opt.containsKey("--path") || !opt.containsKey("--dir")
                || !opt.containsKey("--name"))
            usage();
        dir = Paths.get(opt.get("--dir"));
        name = opt.get("--name");
        int iterations = intOpt("--iterations", 20), holdMs = intOpt("--hold-ms", 5);
        int sessionMs = intOpt("--session-ms", 2000), leases = intOpt("--leases", 1);
        timeoutMs = intOpt("--timeout-ms", 10000);
        char kind = kindOf(mode);

        CuratorFramework c = CuratorFrameworkFactory.newClient(opt.get("--hosts"), sessionMs, (int) timeoutMs,
                new RetryNTimes(3, 100));
        c.start();
        if (!c.blockUntilConnected((int) timeoutMs, TimeUnit.MILLISECONDS)) {
            System.err.println(name + ": not connected within " + timeoutMs + " ms");
            System.exit(1);
        }
        Recipe r = recipe(mode, c, opt.get("--path"));
        if (r == null) usage();

        Files.createFile(dir.resolve(name + ".ready"));
        long deadline = System.nanoTime() + 2 * timeoutMs * 1000000L;
        while (!Files.exists(dir.resolve("go"))) {
            if (System.nanoTime() > deadline) {
                System.err.println(name + ": no go file within " + 2 * timeoutMs + " ms");
                System.exit(1);
            }
            Thread.sleep(5);
        }

        int done = 0;
        try (PrintWriter log = new PrintWriter(Files.newBufferedWriter(dir.resolve(name + ".log")))) {
            for (; done < iterations; done++) {
                String seq = r.acquire();
                long tEnter = System.nanoTime();
                Path marker = enter(kind, leases);
                Thread.sleep(holdMs);
                long tExit = System.nanoTime();
                if (marker != null) Files.delete(marker);
                log.println(tEnter + " " + tExit + " " + kind + " " + name + " " + seq);
                log.flush();
                r.release();
            }
        } catch (Exception e) {
            System.err.println(name + ": " + mode + " iteration " + (done + 1) + ": " + e);
        }
        c.close();
        System.out.println("RESULT name=" + name + " mode=" + mode + " iterations=" + done + " overlaps=" + overlaps);
        System.exit(done != iterations ? 1 : overlaps > 0 ? 3 : 0);
    }

    static void usage() {
        System.err.println("usage: InteropPeer mutex|elect|read|write|sema|dbarrier|bset|bremove|bwait --hosts H"
                + " --path P --dir D --name NAME [--iterations N] [--hold-ms MS] [--session-ms MS] [--timeout-ms MS]"
                + " [--leases N] [--count N]");
        System.exit(2);
    }
}
