/* Periods and time zones for zkr_once (period.c): which period an instant
 * of the server's clock belongs to, as a short id, in a named zone. No
 * process-wide state: the zone is a GLib GTimeZone of its own, never TZ
 * and localtime(), which would change the whole process's idea of local
 * time under the application's feet. */
#ifndef ZKR_PERIOD_H
#define ZKR_PERIOD_H

#include <stddef.h>
#include <stdint.h>

/* A parsed period: "N<unit>". Units s, m, h are wall-clock intervals of
 * the zone's day (N units must divide 24 h), d are N calendar days counted
 * from 1970-01-01 in the zone, w are N ISO weeks (Monday to Sunday)
 * counted from the week of 1970-01-01. */
enum { ZKR__PERIOD_CLOCK, ZKR__PERIOD_DAYS, ZKR__PERIOD_WEEKS };
typedef struct zkr__period {
  int kind;
  int64_t n; /* CLOCK: seconds (divides 86400); DAYS: days; WEEKS: weeks */
} zkr__period;

/* Parses spec into *out. Returns NULL, or the rule it breaks (static). */
const char *zkr__period_parse(const char *spec, zkr__period *out);

/* A time zone: UTC offsets by instant, from GLib's GTimeZone for a zone
 * file under $TZDIR or /usr/share/zoneinfo. GLib reads the file's table
 * and, past it (2037), the zone's POSIX rule up to the year 2999; later
 * instants keep the last offset. GLib 2.74 misreads a rule whose daylight
 * offset is written as 0: Europe/Dublin's ("IST-1GMT0,..."), whose winters
 * past 2037 it puts at +02:00 instead of +00:00. */
typedef struct zkr__zone zkr__zone;

/* Loads zone name: NULL or "UTC" is UTC; anything else must be a tzdata
 * name with a zone file (no path, POSIX rule or offset, which GLib would
 * take too). Returns NULL with *out set (the caller frees it with
 * zkr__zone_free), or the reason it cannot be used (static text; "out of
 * memory" included). */
const char *zkr__zone_load(const char *name, zkr__zone **out);
void zkr__zone_free(zkr__zone *z);

/* The zone's offset east of UTC, in seconds, at t (seconds since the
 * epoch). */
int32_t zkr__zone_offset(const zkr__zone *z, int64_t t);

/* The id of the period of p that contains ms (ms since the epoch) in zone
 * z, into buf: "2026-11-29" (days: the first day), "2026-W48" (weeks: the
 * first week, ISO year and week), "2026-11-29T14:15+01:00" (s, m, h: the
 * period's local start, seconds shown only for a period that is not whole
 * minutes; "Z" for UTC). The offset keeps the two local 02:00 of an
 * autumn's night apart. Ids of one period and zone sort by name as by
 * time, but for that repeated hour. Returns 0, -1 if buf is too small. */
int zkr__period_id(const zkr__period *p, const zkr__zone *z, int64_t ms, char *buf, size_t len);

/* For tests only: added to every server time zkr_once reads, so that a
 * test can move the server's clock to a period (a DST change day, the next
 * day) without waiting for it. 0 otherwise; accessed atomically. */
extern int64_t zkr__once_skew_ms;

#endif
