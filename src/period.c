/* Periods and time zones for zkr_once (see period.h).
 *
 * Why a TZif reader of our own: the C library answers "what is the local
 * date at t in zone Z" only for the zone in the process's TZ variable, and
 * switching TZ inside a library would change local time for every thread
 * of the application (and getenv/setenv are not thread-safe). A zone file
 * is a sorted table of transitions, each with the UTC offset in effect
 * from it on (RFC 8536), and a POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3")
 * for the instants past the table; both are short to read. Only the
 * offset is needed: the local date is then plain calendar arithmetic. */
#include "period.h"

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

/* 0 = Sunday. 1970-01-01 was a Thursday. */
static int weekday(int64_t days) {
  return (int)floor_mod(days + 4, 7);
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
  if (digits == 0 || digits > 6 || spec[digits] == '\0' || spec[digits + 1] != '\0')
    return rule;
  for (i = 0; i < digits; i++)
    n = n * 10 + (spec[i] - '0');
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

/* One transition day of a POSIX rule, "Mm.w.d/time": weekday d (0 =
 * Sunday) of week w (5 = the last) of month m, at time seconds of the
 * local time in effect before it. */
typedef struct rule_day {
  int month, week, wday;
  int32_t time;
} rule_day;

typedef struct posix_rule {
  int32_t std_off, dst_off; /* east of UTC */
  int has_dst;
  rule_day start, end; /* of daylight saving time */
} posix_rule;

struct zkr__zone {
  size_t n;      /* transitions */
  int64_t *at;   /* their instants, ascending */
  int32_t *off;  /* the offset from each on */
  int32_t first; /* before the first (time type 0) */
  int has_rule;  /* the footer governs from the last transition on */
  posix_rule rule;
};

/* "[+-]hh[:mm[:ss]]" into seconds; hours up to 167 (RFC 8536). Returns
 * the text after it, or NULL. */
static const char *parse_hms(const char *p, int32_t *out) {
  int sign = 1, part = 0;
  int32_t v[3] = {0, 0, 0};

  if (*p == '+' || *p == '-')
    sign = *p++ == '-' ? -1 : 1;
  for (;;) {
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 3)
      return NULL;
    v[part] = (int32_t)strtol(p, NULL, 10);
    p += digits;
    if (*p != ':' || part == 2)
      break;
    p++;
    part++;
  }
  if (v[0] > 167 || v[1] > 59 || v[2] > 59)
    return NULL;
  *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
  return p;
}

/* A zone abbreviation: letters, or anything within <...>. */
static const char *parse_abbr(const char *p) {
  if (*p == '<') {
    const char *end = strchr(p, '>');
    return end != NULL ? end + 1 : NULL;
  }
  while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
    p++;
  return p;
}

static const char *parse_rule_day(const char *p, rule_day *r) {
  char *end;

  if (*p++ != 'M')
    return NULL; /* the Jn and n forms: no zone file of tzdata uses them */
  r->month = (int)strtol(p, &end, 10);
  if (end == p || *end != '.')
    return NULL;
  p = end + 1;
  r->week = (int)strtol(p, &end, 10);
  if (end == p || *end != '.')
    return NULL;
  p = end + 1;
  r->wday = (int)strtol(p, &end, 10);
  if (end == p || r->month < 1 || r->month > 12 || r->week < 1 || r->week > 5 || r->wday < 0 || r->wday > 6)
    return NULL;
  p = end;
  r->time = 7200;
  if (*p == '/')
    p = parse_hms(p + 1, &r->time);
  return p;
}

/* A TZ string as the footer of a TZif file carries it. POSIX offsets count
 * west of UTC ("CET-1" is UTC+1). Returns 0, or -1 if not understood. */
static int parse_posix(const char *p, posix_rule *r) {
  int32_t v;

  memset(r, 0, sizeof(*r));
  p = parse_abbr(p);
  if (p == NULL || (p = parse_hms(p, &v)) == NULL)
    return -1;
  r->std_off = -v;
  if (*p == '\0')
    return 0;
  p = parse_abbr(p);
  if (p == NULL)
    return -1;
  r->has_dst = 1;
  r->dst_off = r->std_off + 3600;
  if (*p != ',' && *p != '\0') {
    if ((p = parse_hms(p, &v)) == NULL)
      return -1;
    r->dst_off = -v;
  }
  if (*p++ != ',' || (p = parse_rule_day(p, &r->start)) == NULL || *p++ != ',' ||
      (p = parse_rule_day(p, &r->end)) == NULL)
    return -1;
  return *p == '\0' ? 0 : -1;
}

/* The instant (UTC) of a rule's transition in year y, given the offset in
 * effect before it. */
static int64_t rule_instant(const rule_day *r, int64_t y, int32_t off_before) {
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int64_t first = days_from_civil(y, r->month, 1);
  int len = mdays[r->month - 1], day;

  if (r->month == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    len = 29;
  day = (r->wday - weekday(first) + 7) % 7 + (r->week - 1) * 7;
  while (day >= len) /* week 5: the last such weekday */
    day -= 7;
  return (first + day) * 86400 + r->time - off_before;
}

static int32_t rule_offset(const posix_rule *r, int64_t t) {
  int64_t y, s, e;
  int m, d;
  int dst;

  if (!r->has_dst)
    return r->std_off;
  civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
  s = rule_instant(&r->start, y, r->std_off);
  e = rule_instant(&r->end, y, r->dst_off);
  /* Southern zones have their summer across the new year. */
  dst = s < e ? (s <= t && t < e) : !(e <= t && t < s);
  return dst ? r->dst_off : r->std_off;
}

int32_t zkr__zone_offset(const zkr__zone *z, int64_t t) {
  size_t lo = 0, hi = z->n;

  if (z->n == 0)
    return z->has_rule ? rule_offset(&z->rule, t) : z->first;
  if (t < z->at[0])
    return z->first;
  while (hi - lo > 1) { /* the last transition at or before t */
    size_t mid = lo + (hi - lo) / 2;
    if (z->at[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  if (lo == z->n - 1 && z->has_rule)
    return rule_offset(&z->rule, t);
  return z->off[lo];
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A zone name as tzdata spells them ("Europe/Berlin", "Etc/GMT+1"): it
 * must stay below the zone directory. */
static int zone_name_ok(const char *name) {
  size_t len = strlen(name);

  return len > 0 && len < 200 && name[0] != '/' && name[len - 1] != '/' && strstr(name, "//") == NULL &&
         strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") == len;
}

/* Reads a TZif file of version 2 or later: its 64-bit data block and
 * footer (RFC 8536, 3.1 - 3.3). Returns NULL or why not. */
static const char *parse_tzif(const unsigned char *b, size_t size, zkr__zone *z) {
  static const char bad[] = "the time zone's file is not a valid TZif file of version 2 or later";
  size_t isut, isstd, leap, timecnt, typecnt, charcnt, v1, need, i;
  const unsigned char *p, *types, *idx;
  const char *footer, *footer_end;

  if (size < 44 || memcmp(b, "TZif", 4) != 0 || b[4] < '2')
    return bad;
  /* Skip the version 1 header and its 32-bit data block. */
  v1 = (size_t)be32(b + 32) * 5 + (size_t)be32(b + 36) * 6 + be32(b + 40) + (size_t)be32(b + 28) * 8 +
       be32(b + 24) + be32(b + 20);
  if (44 + v1 + 44 > size)
    return bad;
  p = b + 44 + v1;
  if (memcmp(p, "TZif", 4) != 0)
    return bad;
  isut = be32(p + 20);
  isstd = be32(p + 24);
  leap = be32(p + 28);
  timecnt = be32(p + 32);
  typecnt = be32(p + 36);
  charcnt = be32(p + 40);
  p += 44;
  need = timecnt * 9 + typecnt * 6 + charcnt + leap * 12 + isstd + isut;
  if (typecnt == 0 || timecnt > 100000 || typecnt > 256 || need > size - (size_t)(p - b))
    return bad;
  idx = p + timecnt * 8;
  types = idx + timecnt;
  z->first = (int32_t)be32(types);
  z->n = timecnt;
  z->at = calloc(timecnt + 1, sizeof(*z->at));
  z->off = calloc(timecnt + 1, sizeof(*z->off));
  if (z->at == NULL || z->off == NULL)
    return "out of memory";
  for (i = 0; i < timecnt; i++) {
    z->at[i] = (int64_t)((uint64_t)be32(p + 8 * i) << 32 | be32(p + 8 * i + 4));
    if (idx[i] >= typecnt || (i > 0 && z->at[i] <= z->at[i - 1]))
      return bad;
    z->off[i] = (int32_t)be32(types + 6 * idx[i]);
  }
  footer = (const char *)p + need;
  if (footer >= (const char *)b + size || *footer != '\n')
    return bad;
  footer_end = memchr(footer + 1, '\n', (size_t)((const char *)b + size - footer - 1));
  if (footer_end == NULL)
    return bad;
  if (footer_end > footer + 1) {
    char text[128];
    size_t n = (size_t)(footer_end - footer - 1);
    if (n >= sizeof(text))
      return "the time zone's rule is not supported (longer than 127 bytes)";
    memcpy(text, footer + 1, n);
    text[n] = '\0';
    if (parse_posix(text, &z->rule) != 0)
      return "the time zone's rule is not supported (only Mm.w.d transition days are)";
    z->has_rule = 1;
  }
  return NULL;
}

const char *zkr__zone_load(const char *name, zkr__zone **out) {
  const char *dir = getenv("TZDIR"), *why;
  unsigned char *buf;
  char path[512];
  size_t size;
  zkr__zone *z;
  FILE *f;

  *out = NULL;
  z = calloc(1, sizeof(*z));
  if (z == NULL)
    return "out of memory";
  if (name == NULL || strcmp(name, "UTC") == 0) {
    *out = z; /* no transitions, offset 0 */
    return NULL;
  }
  if (!zone_name_ok(name)) {
    free(z);
    return "a time zone is a name such as Europe/Berlin or UTC (letters, digits, / _ + -)";
  }
  snprintf(path, sizeof(path), "%s/%s", dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", name);
  f = fopen(path, "rbe");
  if (f == NULL) {
    free(z);
    return "no such time zone (no zone file of that name; is tzdata installed?)";
  }
  buf = malloc(1 << 18);
  size = buf != NULL ? fread(buf, 1, 1 << 18, f) : 0;
  fclose(f);
  why = buf == NULL ? "out of memory" : parse_tzif(buf, size, z);
  free(buf);
  if (why != NULL) {
    zkr__zone_free(z);
    return why;
  }
  *out = z;
  return NULL;
}

void zkr__zone_free(zkr__zone *z) {
  if (z == NULL)
    return;
  free(z->at);
  free(z->off);
  free(z);
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
    if (z->n == 0 && !z->has_rule && z->first == 0)
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
