// Writes a ZooKeeper snapshot (the server's own classes, so the server reads
// it as one of its own) in which the persistent node DIR has child version
// CVERSION: a lock directory whose sequence counter is CVERSION away from
// the start. The tests start a server on it to reach the counter's limit
// without creating two billion nodes.
//
//   java -cp zookeeper.jar:zookeeper-jute.jar:. SeedSnapshot SNAPDIR DIR CVERSION
//
// SNAPDIR is the server's dataDir/version-2; DIR's missing ancestors are
// created as persistent nodes.
import java.io.File;
import java.util.HashMap;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.server.DataTree;
import org.apache.zookeeper.server.persistence.FileSnap;
import org.apache.zookeeper.server.persistence.Util;

public class SeedSnapshot {
  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: SeedSnapshot SNAPDIR DIR CVERSION");
      System.exit(2);
    }
    File snapDir = new File(args[0]);
    String dir = args[1];
    int cversion = Integer.parseInt(args[2]);
    DataTree tree = new DataTree();
    long zxid = 0, now = System.currentTimeMillis();

    for (int i = 1; i <= dir.length(); i++) {
      if (i < dir.length() && dir.charAt(i) != '/')
        continue;
      tree.createNode(dir.substring(0, i), new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, 0, -1, ++zxid, now);
    }
    tree.getNode(dir).stat.setCversion(cversion);
    tree.lastProcessedZxid = zxid;
    if (!snapDir.isDirectory() && !snapDir.mkdirs())
      throw new Exception("cannot create " + snapDir);
    new FileSnap(snapDir).serialize(tree, new HashMap<Long, Integer>(),
        new File(snapDir, Util.makeSnapshotName(zxid)), true);
  }
}
