/* The pure parts under the engine: path checks, contender name parsing
 * and kinds, queue order (Curator, Kazoo and overflowed names). */
#include "common.h"

#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void test_names_path_check(void) {
  static const char *const bad[] = {
      "",    "relative", "/",          "/a/",          "//a",     "/a//b", "/a/./b", "/a/../b", "/.",
      "/..", "/a/.",     "/zookeeper", "/zookeeper/x", "/a\001b", "/a\nb", "/a/b/",  "a/b",     "/a\177"};
  static const char *const good[] = {"/a",   "/a/b", "/locks/daily-report", "/zookeeperx", "/a/.b", "/a/..b",
                                     "/a b", "/_c_x"};
  char *longp;
  size_t i;

  CU_ASSERT_EQUAL(zkr__path_check(NULL), ZKR_EINVAL);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CU_ASSERT_EQUAL_FATAL(zkr__path_check(bad[i]), ZKR_EINVAL);
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    CU_ASSERT_EQUAL_FATAL(zkr__path_check(good[i]), ZKR_OK);
  longp = malloc(ZKR__PATH_MAX + 2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(longp);
  memset(longp, 'a', ZKR__PATH_MAX + 1);
  longp[0] = '/';
  longp[ZKR__PATH_MAX + 1] = '\0';
  CU_ASSERT_EQUAL(zkr__path_check(longp), ZKR_EINVAL);
  longp[ZKR__PATH_MAX] = '\0';
  CU_ASSERT_EQUAL(zkr__path_check(longp), ZKR_OK);
  free(longp);
}

static void test_names_hosts_check(void) {
  static const char *const bad[] = {"",     "host", "host:",    ":2181", "host:0",   "host:65536", "host:12a",
                                    "a:1,", ",a:1", "a:1,,b:2", "a b:1", "a:1/bad/", "a:1//x"};
  static const char *const good[] = {"127.0.0.1:2181", "a:1,b:2,c:3", "a:1/chroot",
                                     "a:1/c/d",        "[::1]:2181",  "a:1/"};
  size_t i;

  CU_ASSERT_EQUAL(zkr__hosts_check(NULL), ZKR_EINVAL);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CU_ASSERT_EQUAL_FATAL(zkr__hosts_check(bad[i]), ZKR_EINVAL);
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    CU_ASSERT_EQUAL_FATAL(zkr__hosts_check(good[i]), ZKR_OK);
}

/* The rule a bad input breaks is named (the zkr tool prints it). */
static void test_names_problems_named(void) {
  CU_ASSERT_PTR_NULL(zkr_path_problem("/locks/a"));
  CU_ASSERT_PTR_NOT_NULL(strstr(zkr_path_problem("locks/a"), "absolute"));
  CU_ASSERT_PTR_NOT_NULL(strstr(zkr_path_problem("/a//b"), "//"));
  CU_ASSERT_PTR_NOT_NULL(strstr(zkr_path_problem("/zookeeper/x"), "server's own"));
  CU_ASSERT_PTR_NULL(zkr_hosts_problem("zk1:2181,zk2:2181/app"));
  CU_ASSERT_PTR_NOT_NULL(strstr(zkr_hosts_problem("zk1"), ":port"));
  CU_ASSERT_PTR_NOT_NULL(strstr(zkr_hosts_problem("zk1:99999"), "65535"));
  CU_ASSERT_PTR_NOT_NULL(zkr_hosts_problem("/app")); /* a chroot and no host */
  CU_ASSERT_EQUAL(zkr__hosts_check("/app"), ZKR_EINVAL);
}

static void test_names_name_parse(void) {
  zkr__name n;

  CU_ASSERT_TRUE(zkr__name_parse("_c_0f1e2d3c-1111-4222-8333-444455556666-lock-0000000007", &n));
  CU_ASSERT_STRING_EQUAL(n.seq, "0000000007");
  CU_ASSERT_TRUE(zkr__name_parse("3f2a9c__lock__0000000012", &n)); /* Kazoo */
  CU_ASSERT_STRING_EQUAL(n.seq, "0000000012");
  CU_ASSERT_TRUE(zkr__name_parse("abc__rlock__0000000003", &n)); /* Kazoo read lock */
  CU_ASSERT_TRUE(zkr__name_parse("_c_x-latch-0000000001", &n));  /* Curator latch */
  CU_ASSERT_TRUE(zkr__name_parse("lock-lock-0000000002", &n));
  CU_ASSERT_STRING_EQUAL(n.seq, "0000000002");
  CU_ASSERT_TRUE(zkr__name_parse("x-lock--2147483648", &n)); /* overflowed */
  CU_ASSERT_STRING_EQUAL(n.seq, "-2147483648");
  /* Not contenders: ignored, never a crash. */
  CU_ASSERT_FALSE(zkr__name_parse(NULL, &n));
  CU_ASSERT_FALSE(zkr__name_parse("", &n));
  CU_ASSERT_FALSE(zkr__name_parse("config", &n));
  CU_ASSERT_FALSE(zkr__name_parse("x-lock-", &n));
  CU_ASSERT_FALSE(zkr__name_parse("x-lock-12ab", &n));
  CU_ASSERT_FALSE(zkr__name_parse("x-lock--", &n));
  CU_ASSERT_FALSE(zkr__name_parse("x-lock-000000000000000000001", &n)); /* 21 digits */
  CU_ASSERT_FALSE(zkr__name_parse("-lock-0001x", &n));
  CU_ASSERT_FALSE(zkr__name_parse("x-lock-0000000001-lock-", &n));
}

/* The kind a listing gives each node decides which nodes block a reader. */
static void test_names_kinds(void) {
  static const struct {
    const char *name;
    int kind;
  } cases[] = {
      {"_c_0f-lock-0000000001", ZKR__EXCLUSIVE},
      {"_c_0f-latch-0000000001", ZKR__LEADER},
      {"_c_0f-__WRIT__0000000001", ZKR__EXCLUSIVE},
      {"0f__lock__0000000001", ZKR__EXCLUSIVE},
      {"_c_0f-__READ__0000000001", ZKR__SHARED},
      {"0f__rlock__0000000001", ZKR__SHARED},
      {"_c_0f-lease-0000000001", ZKR__LEASE},
      /* The marker nearest the sequence decides. */
      {"_c_lock-__READ__0000000001", ZKR__SHARED},
      {"x__READ__y-lock-0000000001", ZKR__EXCLUSIVE},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    zkr__name n;

    CU_ASSERT_TRUE_FATAL(zkr__name_parse(cases[i].name, &n));
    CU_ASSERT_EQUAL(n.kind, cases[i].kind);
  }
}

static int cmp(const void *a, const void *b) {
  return zkr__name_cmp(a, b);
}

static void test_names_order_mixed(void) {
  /* Curator and Kazoo contenders interleave by sequence alone. */
  static const char *const kids[] = {"k2__lock__0000000004", "_c_b-lock-0000000002", "junk",
                                     "_c_a-lock-0000000010", "k1__lock__0000000001", "_c_c-lock-0000000003"};
  static const char *const want[] = {"k1__lock__0000000001", "_c_b-lock-0000000002", "_c_c-lock-0000000003",
                                     "k2__lock__0000000004", "_c_a-lock-0000000010"};
  zkr__name names[6];
  size_t i, n = 0;

  for (i = 0; i < 6; i++)
    if (zkr__name_parse(kids[i], &names[n]))
      n++;
  CU_ASSERT_EQUAL_FATAL(n, 5);
  qsort(names, n, sizeof(names[0]), cmp);
  for (i = 0; i < n; i++)
    CU_ASSERT_STRING_EQUAL(names[i].name, want[i]);
}

static void test_names_order_overflow_and_ties(void) {
  zkr__name a, b;

  /* Sequences compare as strings, as Curator and Kazoo compare them, so a
   * mixed queue agrees on its head: a negative (overflowed) one sorts first. */
  CU_ASSERT_TRUE(zkr__name_parse("x-lock--2147483648", &a));
  CU_ASSERT_TRUE(zkr__name_parse("y-lock-0000000001", &b));
  CU_ASSERT_TRUE(zkr__name_cmp(&a, &b) < 0);
  /* A huge hostile sequence sorts after every real one: it blocks nobody. */
  CU_ASSERT_TRUE(zkr__name_parse("h-lock-99999999999999", &a));
  CU_ASSERT_TRUE(zkr__name_parse("y-lock-2147483647", &b));
  CU_ASSERT_TRUE(zkr__name_cmp(&a, &b) > 0);
  /* Equal sequences (different directories' history) tie-break by name. */
  CU_ASSERT_TRUE(zkr__name_parse("a-lock-0000000005", &a));
  CU_ASSERT_TRUE(zkr__name_parse("b-lock-0000000005", &b));
  CU_ASSERT_TRUE(zkr__name_cmp(&a, &b) < 0);
  CU_ASSERT_TRUE(zkr__name_cmp(&a, &a) == 0);
}

/* P1: a suffix at or past the counter's limit (repeated 2147483647, or
 * wrapped negative) no longer follows creation order. */
static void test_names_suffix_exhausted(void) {
  static const char *const exhausted[] = {"_c_a-lock-2147483647", "_c_a-lock--2147483648",
                                          "_c_a-lock--0000000001", "x__lock__99999999999",
                                          "_c_a-latch-99999999999999999999"};
  static const char *const regular[] = {"_c_a-lock-0000000000", "_c_a-lock-2147483646", "x__lock__0000000007",
                                        "_c_a-latch-0000000001"};
  zkr__name n;
  size_t i;

  for (i = 0; i < sizeof(exhausted) / sizeof(exhausted[0]); i++) {
    CU_ASSERT_TRUE_FATAL(zkr__name_parse(exhausted[i], &n));
    CU_ASSERT_TRUE(zkr__name_seq_exhausted(&n));
  }
  for (i = 0; i < sizeof(regular) / sizeof(regular[0]); i++) {
    CU_ASSERT_TRUE_FATAL(zkr__name_parse(regular[i], &n));
    CU_ASSERT_FALSE(zkr__name_seq_exhausted(&n));
  }
}

/* P5: the one rule every listing applies: a contender's name on an
 * ephemeral node. */
static void test_names_contender_rule(void) {
  zkr__name n;

  CU_ASSERT_TRUE(zkr__contender_check("_c_a-lock-0000000001", 0x1234, &n));
  CU_ASSERT_FALSE(zkr__contender_check("_c_a-lock-0000000001", 0, &n));     /* persistent */
  CU_ASSERT_FALSE(zkr__contender_check("cleanup-lock-0000000000", 0, &n));  /* the input */
  CU_ASSERT_FALSE(zkr__contender_check("readme.txt", 0x1234, &n));          /* no contender name */
  CU_ASSERT_TRUE(zkr__contender_check("x__rlock__0000000003", 0x1234, &n)); /* Kazoo */
}

static void test_names_uuid(void) {
  char a[37], b[37];
  int i;

  CU_ASSERT_EQUAL(zkr__uuid(a), ZKR_OK);
  CU_ASSERT_EQUAL(zkr__uuid(b), ZKR_OK);
  CU_ASSERT_EQUAL(strlen(a), 36);
  CU_ASSERT_STRING_NOT_EQUAL(a, b);
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      CU_ASSERT_EQUAL(a[i], '-');
    } else {
      CU_ASSERT_PTR_NOT_NULL(strchr("0123456789abcdef", a[i]));
    }
  }
  CU_ASSERT_EQUAL(a[14], '4'); /* version 4 */
}

int main(void) {
  static const th_test tests[] = {{"test_names_path_check", test_names_path_check},
                                  {"test_names_hosts_check", test_names_hosts_check},
                                  {"test_names_problems_named", test_names_problems_named},
                                  {"test_names_name_parse", test_names_name_parse},
                                  {"test_names_kinds", test_names_kinds},
                                  {"test_names_order_mixed", test_names_order_mixed},
                                  {"test_names_order_overflow_and_ties", test_names_order_overflow_and_ties},
                                  {"test_names_suffix_exhausted", test_names_suffix_exhausted},
                                  {"test_names_contender_rule", test_names_contender_rule},
                                  {"test_names_uuid", test_names_uuid},
                                  {NULL, NULL}};

  return th_run("names", tests);
}
