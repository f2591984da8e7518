/* A fault proxy a shell test can drive: the CLI suite's way to stall one
 * zkr's link to ZooKeeper while the server and other clients go on.
 *
 *   proxy_cli UPSTREAM_HOST:PORT
 *
 * Prints the proxy's connect string ("127.0.0.1:PORT") on a line, then
 * reads commands, one a line, from stdin and answers each with "ok" once
 * it is in effect: "stall", "resume", "drop". Ends (closing every
 * connection) at end of input. */
#include "config.h"

#include "proxy.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  char line[64];
  tp_proxy *p;

  if (argc != 2) {
    fprintf(stderr, "usage: %s UPSTREAM_HOST:PORT\n", argv[0]);
    return 2;
  }
  p = tp_start(argv[1]);
  if (p == NULL)
    return 1;
  printf("%s\n", tp_hosts(p));
  fflush(stdout);
  while (fgets(line, sizeof(line), stdin) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, "stall") == 0)
      tp_stall(p, 1);
    else if (strcmp(line, "resume") == 0)
      tp_stall(p, 0);
    else if (strcmp(line, "drop") == 0)
      tp_drop_all(p);
    else {
      printf("unknown command %s\n", line);
      fflush(stdout);
      continue;
    }
    printf("ok\n");
    fflush(stdout);
  }
  tp_stop(p);
  return 0;
}
