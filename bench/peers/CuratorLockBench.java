// One client process of the lock benchmark, using Apache Curator's
// InterProcessMutex. Same protocol as the C client: see kazoo_lock_bench.py
// for the Python twin. Build with build-curator.sh.
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryNTimes;

public final class CuratorLockBench {
  static final class Usage extends Exception {
    Usage(String m) { super(m); }
  }

  // Growable long list: boxing every sample would add GC noise to the loop.
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
  static int count = 2000, warmup = 500;
  static long holdUs = 0;
  static long tickNs;

  public static void main(String[] args) {
    try {
      parse(args);
    } catch (Usage e) {
      System.err.println("CuratorLockBench: " + e.getMessage());
      System.err.println("usage: CuratorLockBench --mode uncontended|contended --connect HOSTS --path PATH"
          + " [--count N] [--warmup W] [--hold-us U] --ready FILE --go FILE --out FILE");
      System.exit(2);
    }
    try {
      run();
    } catch (Throwable e) {
      System.err.println("CuratorLockBench: " + e);
      System.exit(1);
    }
    // Curator/ZooKeeper leave non-daemon threads behind on some paths.
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
        case "--count": count = (int) num(f, v); break;
        case "--warmup": warmup = (int) num(f, v); break;
        case "--hold-us": holdUs = num(f, v); break;
        case "--ready": ready = v; break;
        case "--go": go = v; break;
        case "--out": out = v; break;
        default: throw new Usage("unknown flag " + f);
      }
    }
    if (!"uncontended".equals(mode) && !"contended".equals(mode))
      throw new Usage("--mode must be uncontended or contended");
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

  static void run() throws Exception {
    // Asked once up front so the fork does not land inside the measurement.
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
      boolean contended = mode.equals("contended");
      InterProcessMutex mutex = new InterProcessMutex(client, path);
      // Contended warm-up uses a side path so it does not steal turns from
      // peers that are already measuring on PATH.
      InterProcessMutex warm = contended ? new InterProcessMutex(client, path + "-warm") : mutex;
      for (int i = 0; i < warmup; i++) {
        warm.acquire();
        warm.release();
      }
      Files.write(Paths.get(ready), new byte[0]);

      long[] window = waitGo();
      while (window[0] - System.nanoTime() > 2_000_000L) Thread.sleep(1);
      while (System.nanoTime() < window[0]) Thread.onSpinWait();

      StringBuilder sb = new StringBuilder("{\"impl\": \"curator\", \"mode\": \"" + mode + "\"");
      long cpu0 = cpuNs();
      int measured;
      if (!contended) {
        Longs acq = new Longs(count), rel = new Longs(count);
        long first = 0, last = 0;
        for (int i = 0; i < count; i++) {
          long t0 = System.nanoTime();
          mutex.acquire();
          long t1 = System.nanoTime();
          mutex.release();
          long t2 = System.nanoTime();
          acq.add(t1 - t0);
          rel.add(t2 - t1);
          if (i == 0) first = t0;
          last = t2;
        }
        long cpu = cpuNs() - cpu0;
        measured = count;
        sb.append(", \"acq_ns\": "); acq.json(sb);
        sb.append(", \"rel_ns\": "); rel.json(sb);
        sb.append(", \"loop_ns\": ").append(last - first);
        sb.append(", \"cpu_ns\": ").append(cpu);
      } else {
        Longs enter = new Longs(1 << 14), exit = new Longs(1 << 14);
        long holdNs = holdUs * 1000;
        while (System.nanoTime() < window[1]) {
          mutex.acquire();
          long tIn = System.nanoTime();
          while (System.nanoTime() < tIn + holdNs) Thread.onSpinWait();
          long tOut = System.nanoTime();
          mutex.release();
          enter.add(tIn);
          exit.add(tOut);
        }
        long cpu = cpuNs() - cpu0;
        measured = enter.n;
        sb.append(", \"enter\": "); enter.json(sb);
        sb.append(", \"exit\": "); exit.json(sb);
        sb.append(", \"cpu_ns\": ").append(cpu);
      }
      sb.append(", \"count\": ").append(measured).append("}\n");
      Path tmp = Paths.get(out + ".tmp");
      Files.write(tmp, sb.toString().getBytes(StandardCharsets.UTF_8));
      Files.move(tmp, Paths.get(out), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      client.close();
    }
  }

  // The driver may still be writing the go file: only a complete first line counts.
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

  // utime+stime of all threads (fields 14, 15); parsed after the last ')' since comm may hold spaces.
  static long cpuNs() throws Exception {
    String s = new String(Files.readAllBytes(Paths.get("/proc/self/stat")), StandardCharsets.US_ASCII);
    String[] f = s.substring(s.lastIndexOf(')') + 2).trim().split(" ");
    return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * tickNs;
  }
}
