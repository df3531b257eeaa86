/* termsafe.h: untrusted text (order ids, notes, actors, entity ids, reasons that
 * quote them) made safe to print on a terminal: control characters (C0 but a
 * line break where allowed, DEL, C1), Unicode bidirectional overrides and
 * isolates (U+202A-202E, U+2066-2069) and bytes that are not UTF-8 are shown as
 * escapes (\e, \x1b, \u202e) instead of being sent to the terminal, where they
 * could move the cursor, retitle the window, ring the bell or reorder the text
 * that follows (a fake line, a reversed id). */
#ifndef CRAFT_TERMSAFE_H
#define CRAFT_TERMSAFE_H

#include <stddef.h>
#include <stdio.h>

/* Writes s (NULL: "-") to f with the escapes; keep_newlines lets \n through (a
 * multi-line note, a list of errors). */
void craft_term_fputs(const char *s, FILE *f, int keep_newlines);
/* The escaped text of s in buf (cut to cap - 1 bytes with "..." when longer);
 * returns buf. For printf columns (%-20s). */
const char *craft_term_str(const char *s, char *buf, size_t cap);

#endif
