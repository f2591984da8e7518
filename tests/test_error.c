/* Error codes and version: zkr_strerror(), zkr_err_name(), the published
 * values, zkr_version_string(). No server needed. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* Every code of the map with its name and message, generated from the same
 * list as the library so that a code added later is covered too. */
typedef struct code_info {
  int code;
  const char *name;
  const char *msg;
} code_info;

static const code_info codes[] = {
#define ENTRY(name, value, msg) {ZKR_##name, "ZKR_" #name, msg},
    ZKR_ERRNO_MAP(ENTRY)
#undef ENTRY
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* Codes that are not in the map: positive, far negative, the extremes and
 * the next value to be appended. */
static const int unknown_codes[] = {1, 2, 100, -9999, INT_MIN, INT_MAX, -(int)NCODES - 1, -1000};
#define NUNKNOWN (sizeof(unknown_codes) / sizeof(unknown_codes[0]))

static void test_error_strerror_every_code_has_text(void) {
  size_t i;

  for (i = 0; i < NCODES; i++) {
    const char *t = zkr_strerror(codes[i].code);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_TRUE(t[0] != '\0');
    /* The text is the one written in the map. */
    CU_ASSERT_STRING_EQUAL(t, codes[i].msg);
  }
}

static void test_error_strerror_texts_distinct(void) {
  size_t i, j;

  for (i = 0; i < NCODES; i++) {
    for (j = i + 1; j < NCODES; j++) {
      if (strcmp(zkr_strerror(codes[i].code), zkr_strerror(codes[j].code)) == 0) {
        fprintf(stderr, "same text for %s and %s\n", codes[i].name, codes[j].name);
        CU_FAIL("two codes share a text");
      }
    }
  }
}

static void test_error_strerror_ok_has_own_text(void) {
  const char *ok = zkr_strerror(ZKR_OK);
  size_t i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(ok);
  CU_ASSERT_TRUE(ok[0] != '\0');
  for (i = 0; i < NCODES; i++)
    CU_ASSERT_STRING_NOT_EQUAL(ok, zkr_strerror(codes[i].code));
}

static void test_error_strerror_unknown_code_generic(void) {
  size_t i, j;

  for (i = 0; i < NUNKNOWN; i++) {
    const char *t = zkr_strerror(unknown_codes[i]);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_TRUE(t[0] != '\0');
    /* An unknown code must not pass for a real one (nor for success). */
    CU_ASSERT_STRING_NOT_EQUAL(t, zkr_strerror(ZKR_OK));
    for (j = 0; j < NCODES; j++)
      CU_ASSERT_STRING_NOT_EQUAL(t, zkr_strerror(codes[j].code));
  }
}

static void test_error_err_name_every_code(void) {
  size_t i;

  CU_ASSERT_STRING_EQUAL(zkr_err_name(ZKR_EINVAL), "ZKR_EINVAL");
  CU_ASSERT_STRING_EQUAL(zkr_err_name(ZKR_ETIMEDOUT), "ZKR_ETIMEDOUT");
  CU_ASSERT_STRING_EQUAL(zkr_err_name(ZKR_OK), "ZKR_OK");
  for (i = 0; i < NCODES; i++) {
    const char *n = zkr_err_name(codes[i].code);

    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n, codes[i].name);
  }
}

static void test_error_err_name_unknown(void) {
  size_t i;

  for (i = 0; i < NUNKNOWN; i++) {
    const char *n = zkr_err_name(unknown_codes[i]);

    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n, "ZKR_UNKNOWN");
  }
}

static void test_error_published_values_stable(void) {
  /* Published values never change: this list is the ABI, written out by
   * hand so that editing the map cannot silently renumber a code. */
  static const struct {
    int code;
    int value;
  } abi[] = {{ZKR_OK, 0},          {ZKR_EINVAL, -1},      {ZKR_ETIMEDOUT, -2},  {ZKR_ENOTHELD, -3},
             {ZKR_ESESSION, -4},   {ZKR_ECONNLOSS, -5},   {ZKR_ENOAUTH, -6},    {ZKR_ENOMEM, -7},
             {ZKR_EZK, -8},        {ZKR_ECLOSED, -9},     {ZKR_ELOST, -10},     {ZKR_ECONNECT, -11},
             {ZKR_ENOLEADER, -12}, {ZKR_EEXHAUSTED, -13}, {ZKR_ENOCHROOT, -14}, {ZKR_ELOGROUTES, -15},
             {ZKR_EDEADLK, -16},   {ZKR_EMISMATCH, -17},  {ZKR_EBROKEN, -18}};
  size_t i, j;

  for (i = 0; i < sizeof(abi) / sizeof(abi[0]); i++)
    CU_ASSERT_EQUAL(abi[i].code, abi[i].value);
  /* Every code is negative and used once. */
  for (i = 0; i < NCODES; i++) {
    CU_ASSERT_TRUE(codes[i].code < 0);
    for (j = i + 1; j < NCODES; j++)
      CU_ASSERT_NOT_EQUAL(codes[i].code, codes[j].code);
  }
}

static void test_error_version_string_matches_macros(void) {
  char expect[64];
  const char *v = zkr_version_string();

  snprintf(expect, sizeof(expect), "%d.%d.%d", ZKR_VERSION_MAJOR, ZKR_VERSION_MINOR, ZKR_VERSION_PATCH);
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  CU_ASSERT_STRING_EQUAL(v, expect);
  /* Static: the same pointer every time, nothing to free. */
  CU_ASSERT_PTR_EQUAL(v, zkr_version_string());
}

int main(void) {
  static const th_test tests[] = {
      {"test_error_strerror_every_code_has_text", test_error_strerror_every_code_has_text},
      {"test_error_strerror_texts_distinct", test_error_strerror_texts_distinct},
      {"test_error_strerror_ok_has_own_text", test_error_strerror_ok_has_own_text},
      {"test_error_strerror_unknown_code_generic", test_error_strerror_unknown_code_generic},
      {"test_error_err_name_every_code", test_error_err_name_every_code},
      {"test_error_err_name_unknown", test_error_err_name_unknown},
      {"test_error_published_values_stable", test_error_published_values_stable},
      {"test_error_version_string_matches_macros", test_error_version_string_matches_macros},
      {NULL, NULL}};

  return th_run("error", tests);
}
