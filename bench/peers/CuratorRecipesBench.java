// One client process of the read-write lock and semaphore benchmarks, using
// Apache Curator's InterProcessReadWriteLock and InterProcessSemaphoreV2.
// The twin of zkr_bench --mode rw|sem (same flags, same operation sequence,
// same JSON). Build with build-curator.sh.
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.RetryNTimes;

public final class CuratorRecipesBench {
  static final class Usage extends Exception {
    Usage(String m) { super(m); }
  }

  static final class Longs {
    long[] a;
    int n;
    Longs(int cap) { a = new long[Math.max(cap, 16)]; }
    void add(long v) {
      if (n == a.length) a = Arrays.copyOf(a, n * 2);
      a[n++] = v;
    }
    void json(StringBuilder sb) {
      sb.append('[');
      for (int i = 0; i < n; i++) sb.append(i == 0 ? "" : ", ").append(a[i]);
      sb.append(']');
    }
  }

  static String mode, connect, path, ready, go, out;
  static int warmup = 500, readPct = 95, maxLeases = 4, clientId = 0;
  static long holdUs = 0;
  static long tickNs;

  public static void main(String[] args) {
    try {
      parse(args);
    } catch (Usage e) {
      System.err.println("CuratorRecipesBench: " + e.getMessage());
      System.err.println("usage: CuratorRecipesBench --mode rw|sem --connect HOSTS --path PATH [--warmup W]"
          + " [--hold-us U] [--read-pct P] [--max-leases N] [--client I] --ready FILE --go FILE --out FILE");
      System.exit(2);
    }
    try {
      run();
    } catch (Throwable e) {
      System.err.println("CuratorRecipesBench: " + e);
      System.exit(1);
    }
    System.exit(0);
  }

  static void parse(String[] args) throws Usage {
    for (int i = 0; i < args.length; i++) {
      String f = args[i];
      if (i + 1 >= args.length) throw new Usage("missing value for " + f);
      String v = args[++i];
      switch (f) {
        case "--mode": mode = v; break;
        case "--connect": connect = v; break;
        case "--path": path = v; break;
        case "--warmup": warmup = (int) num(f, v); break;
        case "--hold-us": holdUs = num(f, v); break;
        case "--read-pct": readPct = (int) num(f, v); break;
        case "--max-leases": maxLeases = (int) num(f, v); break;
        case "--client": clientId = (int) num(f, v); break;
        case "--ready": ready = v; break;
        case "--go": go = v; break;
        case "--out": out = v; break;
        default: throw new Usage("unknown flag " + f);
      }
    }
    if (!"rw".equals(mode) && !"sem".equals(mode)) throw new Usage("--mode must be rw or sem");
    if (connect == null || path == null || ready == null || go == null || out == null)
      throw new Usage("--connect, --path, --ready, --go and --out are required");
  }

  static long num(String f, String v) throws Usage {
    try {
      long n = Long.parseLong(v);
      if (n < 0 || n > Integer.MAX_VALUE) throw new NumberFormatException();
      return n;
    } catch (NumberFormatException e) {
      throw new Usage("bad value for " + f + ": " + v);
    }
  }

  // xorshift64, as zkr_bench: every implementation runs the same sequence.
  static long x;
  static void seed() { x = 0x9e3779b97f4a7c15L ^ ((long) (clientId + 1) * 0xbf58476d1ce4e5b9L); }
  static int nextKind(boolean sem) {
    if (sem) return 2;
    x ^= x << 13;
    x ^= x >>> 7;
    x ^= x << 17;
    return Long.remainderUnsigned(x, 100) < readPct ? 0 : 1;
  }

  // One recipe object per path: a read-write lock or a semaphore.
  static final class Recipe {
    final InterProcessMutex rd, wr;
    final InterProcessSemaphoreV2 sem;
    Lease lease;
    Recipe(CuratorFramework c, String p, boolean isSem) {
      if (isSem) {
        sem = new InterProcessSemaphoreV2(c, p, maxLeases);
        rd = wr = null;
      } else {
        InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c, p);
        rd = rw.readLock();
        wr = rw.writeLock();
        sem = null;
      }
    }
    void acquire(int kind) throws Exception {
      if (kind == 2) lease = sem.acquire();
      else (kind == 0 ? rd : wr).acquire();
    }
    void release(int kind) throws Exception {
      if (kind == 2) {
        sem.returnLease(lease);
        lease = null;
      } else {
        (kind == 0 ? rd : wr).release();
      }
    }
  }

  static void run() throws Exception {
    Process p = new ProcessBuilder("getconf", "CLK_TCK").redirectErrorStream(true).start();
    String tck = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
    if (p.waitFor() != 0) throw new IllegalStateException("getconf CLK_TCK failed");
    tickNs = 1_000_000_000L / Long.parseLong(tck);

    CuratorFramework client = CuratorFrameworkFactory.builder().connectString(connect)
        .sessionTimeoutMs(10000).connectionTimeoutMs(5000)
        .retryPolicy(new RetryNTimes(3, 100)).build();
    client.start();
    try {
      if (!client.blockUntilConnected(15, TimeUnit.SECONDS))
        throw new IllegalStateException("not connected to " + connect + " after 15 s");
      boolean isSem = mode.equals("sem");
      // Warm-up on a side path so it does not steal turns from peers already measuring.
      Recipe warm = new Recipe(client, path + "-warm", isSem);
      seed();
      for (int i = 0; i < warmup; i++) {
        int k = nextKind(isSem);
        warm.acquire(k);
        warm.release(k);
      }
      Recipe r = new Recipe(client, path, isSem);
      seed();
      Files.write(Paths.get(ready), new byte[0]);

      long[] window = waitGo();
      while (window[0] - System.nanoTime() > 2_000_000L) Thread.sleep(1);
      while (System.nanoTime() < window[0]) Thread.onSpinWait();

      Longs enter = new Longs(1 << 14), exit = new Longs(1 << 14), acq = new Longs(1 << 14),
          kinds = new Longs(1 << 14);
      long holdNs = holdUs * 1000;
      long cpu0 = cpuNs();
      while (System.nanoTime() < window[1]) {
        int k = nextKind(isSem);
        long t0 = System.nanoTime();
        r.acquire(k);
        long tIn = System.nanoTime();
        while (System.nanoTime() < tIn + holdNs) Thread.onSpinWait();
        long tOut = System.nanoTime();
        r.release(k);
        enter.add(tIn);
        exit.add(tOut);
        acq.add(tIn - t0);
        kinds.add(k);
      }
      long cpu = cpuNs() - cpu0;
      StringBuilder sb = new StringBuilder("{\"impl\": \"curator\", \"mode\": \"" + mode + "\"");
      sb.append(", \"enter\": "); enter.json(sb);
      sb.append(", \"exit\": "); exit.json(sb);
      sb.append(", \"acq_ns\": "); acq.json(sb);
      sb.append(", \"kind\": "); kinds.json(sb);
      sb.append(", \"cpu_ns\": ").append(cpu);
      sb.append(", \"count\": ").append(enter.n).append("}\n");
      Path tmp = Paths.get(out + ".tmp");
      Files.write(tmp, sb.toString().getBytes(StandardCharsets.UTF_8));
      Files.move(tmp, Paths.get(out), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      client.close();
    }
  }

  static long[] waitGo() throws Exception {
    Path g = Paths.get(go);
    while (true) {
      try {
        String s = new String(Files.readAllBytes(g), StandardCharsets.US_ASCII);
        int nl = s.indexOf('\n');
        if (nl >= 0) {
          String[] f = s.substring(0, nl).trim().split("\\s+");
          if (f.length != 2) throw new IllegalStateException("bad go file: " + s.substring(0, nl));
          return new long[] {Long.parseLong(f[0]), Long.parseLong(f[1])};
        }
      } catch (NoSuchFileException e) {
        // not there yet
      }
      Thread.sleep(1);
    }
  }

  static long cpuNs() throws Exception {
    String s = new String(Files.readAllBytes(Paths.get("/proc/self/stat")), StandardCharsets.US_ASCII);
    String[] f = s.substring(s.lastIndexOf(')') + 2).trim().split(" ");
    return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * tickNs;
  }
}
