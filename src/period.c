/* Periods and time zones for zkr_once (see period.h).
 *
 * Why GLib's GTimeZone: the C library answers "what is the local date at
 * t in zone Z" only for the zone in the process's TZ variable, and
 * switching TZ inside a library would change local time for every thread
 * of the application (and getenv/setenv are not thread-safe). A GTimeZone
 * is an immutable object of its own, read from the zone's file and its
 * POSIX rule for the instants past the file's table. Only the offset is
 * needed: the local date is then plain calendar arithmetic. */
#include "period.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- calendar arithmetic (proleptic Gregorian, after H. Hinnant) --------- */

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;

  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b) {
  return a - floor_div(a, b) * b;
}

/* Days since 1970-01-01 of y-m-d. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;

  y -= m <= 2;
  era = floor_div(y, 400);
  yoe = y - era * 400;
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  int64_t era, doe, yoe, doy, mp;

  z += 719468;
  era = floor_div(z, 146097);
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

/* --- periods -------------------------------------------------------------- */

const char *zkr__period_parse(const char *spec, zkr__period *out) {
  static const char rule[] = "a period is a count and a unit s, m, h, d or w, such as 1d, 15m or 1w";
  size_t digits;
  int64_t n = 0;
  size_t i;

  if (spec == NULL)
    return "the period is NULL";
  digits = strspn(spec, "0123456789");
  if (digits == 0 || spec[digits] == '\0' || spec[digits + 1] != '\0')
    return rule;
  /* Any count is read, saturating past 10^9 (beyond every unit's bound),
   * so that 1000000d gets the same message as 3661d. */
  for (i = 0; i < digits; i++)
    n = n > 1000000000 ? n : n * 10 + (spec[i] - '0');
  if (n == 0)
    return "a period's count must be at least 1";
  switch (spec[digits]) {
  case 's':
  case 'm':
  case 'h':
    out->kind = ZKR__PERIOD_CLOCK;
    out->n = n * (spec[digits] == 's' ? 1 : spec[digits] == 'm' ? 60 : 3600);
    /* Intervals of the zone's day: they must tile it, or the last one of
     * each day would be short. */
    if (out->n > 86400 || 86400 % out->n != 0)
      return "a period in s, m or h must divide a day (24h, 86400s): use d for longer ones";
    return NULL;
  case 'd':
    out->kind = ZKR__PERIOD_DAYS;
    out->n = n;
    return n > 3660 ? "a period in days is at most 3660d" : NULL;
  case 'w':
    out->kind = ZKR__PERIOD_WEEKS;
    out->n = n;
    return n > 520 ? "a period in weeks is at most 520w" : NULL;
  default:
    return rule;
  }
}

/* --- zones ---------------------------------------------------------------- */

struct zkr__zone {
  GTimeZone *tz;
  int utc; /* loaded as UTC: ids say "Z" */
};

/* A zone name as tzdata spells them ("Europe/Berlin", "Etc/GMT+1"): it
 * must stay below the zone directory. */
static int zone_name_ok(const char *name) {
  size_t len = strlen(name);

  return len > 0 && len < 200 && name[0] != '/' && name[len - 1] != '/' && strstr(name, "//") == NULL &&
         strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") == len;
}

/* Whether name has a zone file where GLib looks for it ($TZDIR, else
 * /usr/share/zoneinfo): GLib would also take a POSIX rule ("UTC+5", which
 * is UTC-5) or an offset ("+0100") for a name without a file, and logs a
 * critical warning for a file that is no zone ("leapseconds"). */
static int zone_file_ok(const char *name) {
  const char *dir = getenv("TZDIR");
  char *path = g_build_filename(dir != NULL ? dir : "/usr/share/zoneinfo", name, NULL);
  FILE *f = fopen(path, "rbe");
  char magic[4];
  int ok;

  g_free(path);
  ok = f != NULL && fread(magic, 1, sizeof(magic), f) == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
  if (f != NULL)
    fclose(f);
  return ok;
}

const char *zkr__zone_load(const char *name, zkr__zone **out) {
  int utc = name == NULL || strcmp(name, "UTC") == 0;
  zkr__zone *z;

  *out = NULL;
  if (!utc && !zone_name_ok(name))
    return "a time zone is a name such as Europe/Berlin or UTC (letters, digits, / _ + -)";
  /* right/ zones count leap seconds, which ZooKeeper's times (POSIX ms)
   * do not; posix/ is a copy of the plain names: neither is a zone name
   * for a key, and one key spelt two ways would record two settings. */
  if (!utc && (strncmp(name, "right/", 6) == 0 || strncmp(name, "posix/", 6) == 0))
    return "right/ and posix/ zones are not accepted: use the zone's plain name (such as Europe/Berlin)";
  if (!utc && !zone_file_ok(name))
    return "no such time zone (no zone file of that name; is tzdata installed?)";
  z = calloc(1, sizeof(*z));
  if (z == NULL)
    return "out of memory";
  z->utc = utc;
  z->tz = utc ? g_time_zone_new_utc() : g_time_zone_new_identifier(name);
  if (z->tz == NULL) { /* the file changed since zone_file_ok(), or GLib cannot read it */
    free(z);
    return "the time zone's file could not be read";
  }
  *out = z;
  return NULL;
}

void zkr__zone_free(zkr__zone *z) {
  if (z == NULL)
    return;
  g_time_zone_unref(z->tz);
  free(z);
}

int32_t zkr__zone_offset(const zkr__zone *z, int64_t t) {
  /* A UTC instant lies in exactly one interval: the lookup cannot fail. */
  return g_time_zone_get_offset(z->tz, g_time_zone_find_interval(z->tz, G_TIME_TYPE_UNIVERSAL, t));
}

/* --- period ids ----------------------------------------------------------- */

int zkr__period_id(const zkr__period *p, const zkr__zone *z, int64_t ms, char *buf, size_t len) {
  int64_t t = floor_div(ms, 1000), local, day, y;
  int32_t off = zkr__zone_offset(z, t);
  int m, d, n;

  local = t + off;
  day = floor_div(local, 86400);
  if (p->kind == ZKR__PERIOD_DAYS) {
    civil_from_days(floor_div(day, p->n) * p->n, &y, &m, &d);
    n = snprintf(buf, len, "%04lld-%02d-%02d", (long long)y, m, d);
  } else if (p->kind == ZKR__PERIOD_WEEKS) {
    /* Weeks counted from Monday 1969-12-29; named by the ISO year and week
     * of their Monday: the year of that week's Thursday. */
    int64_t monday = floor_div(floor_div(day + 3, 7), p->n) * p->n * 7 - 3, jan1;
    civil_from_days(monday + 3, &y, &m, &d);
    jan1 = days_from_civil(y, 1, 1);
    n = snprintf(buf, len, "%04lld-W%02d", (long long)y, (int)((monday + 3 - jan1) / 7 + 1));
  } else {
    int64_t start = floor_div(floor_mod(local, 86400), p->n) * p->n;
    char zone[16];
    civil_from_days(day, &y, &m, &d);
    if (z->utc)
      snprintf(zone, sizeof(zone), "Z");
    else
      snprintf(zone, sizeof(zone), "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 3600, abs(off) / 60 % 60);
    if (p->n % 60 == 0)
      n = snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d%s", (long long)y, m, d, (int)(start / 3600),
                   (int)(start / 60 % 60), zone);
    else
      n = snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d%s", (long long)y, m, d, (int)(start / 3600),
                   (int)(start / 60 % 60), (int)(start % 60), zone);
  }
  return n >= 0 && (size_t)n < len ? 0 : -1;
}
