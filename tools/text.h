/* Showing text for the zkr tool: untrusted bytes (participant ids) made
 * safe for a terminal or for JSON. Paths and host strings are checked by
 * the library (zkr_path_problem, zkr_hosts_problem). */
#ifndef ZKR_TOOLS_TEXT_H
#define ZKR_TOOLS_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* Copies s into buf (len bytes, truncated with "..." if needed) with
 * control characters and bytes that are not UTF-8 shown as \xNN, and
 * returns buf. */
const char *printable(const char *s, char *buf, size_t len);

/* Writes s as a JSON string: control characters escaped, bytes that are
 * not UTF-8 replaced by U+FFFD, so the output is valid JSON whatever s
 * holds. */
void json_string(FILE *out, const char *s);

#endif
