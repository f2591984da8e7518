/* Checking and showing text for the zkr tool: paths and host strings with
 * the rule they break, and untrusted bytes (participant ids) made safe for
 * a terminal or for JSON. */
#ifndef ZKR_TOOLS_TEXT_H
#define ZKR_TOOLS_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* Returns which rule the recipe path breaks (static text), or NULL if it
 * is acceptable. The rules are the library's (zkr_lock_new and friends
 * return ZKR_EINVAL for any of them); the tool checks them before
 * connecting so that the message can name the rule. */
const char *path_problem(const char *path);

/* Returns which rule the connect string "host:port[,host:port...][/chroot]"
 * breaks (static text), or NULL if it is well formed. */
const char *hosts_problem(const char *hosts);

/* Copies s into buf (len bytes, truncated with "..." if needed) with
 * control characters and bytes that are not UTF-8 shown as \xNN, and
 * returns buf. */
const char *printable(const char *s, char *buf, size_t len);

/* Writes s as a JSON string: control characters escaped, bytes that are
 * not UTF-8 replaced by U+FFFD, so the output is valid JSON whatever s
 * holds. */
void json_string(FILE *out, const char *s);

#endif
