/* termsafe.c: escapes for untrusted text on a terminal (termsafe.h). */
#include "termsafe.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if not valid. */
static size_t utf8_len(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static int dangerous(unsigned cp, int keep_newlines)
{
    if (cp == '\n')
        return !keep_newlines;
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F || cp == 0x061C;
}

/* Appends the escaped form of s to out via put (one chunk at a time). */
static void escape(const char *s, int keep_newlines, void (*put)(void *, const char *, size_t), void *user)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        unsigned cp = 0;
        size_t len = utf8_len(p, n, &cp);
        char tmp[16];
        if (!len) {
            snprintf(tmp, sizeof tmp, "\\x%02x", p[0]);
            put(user, tmp, strlen(tmp));
            len = 1;
        } else if (dangerous(cp, keep_newlines)) {
            if (cp == '\n')
                put(user, "\\n", 2);
            else if (cp == '\r')
                put(user, "\\r", 2);
            else if (cp == '\t')
                put(user, "\\t", 2);
            else if (cp == 0x1B)
                put(user, "\\e", 2);
            else if (cp < 0x100)
                snprintf(tmp, sizeof tmp, "\\x%02x", cp), put(user, tmp, strlen(tmp));
            else
                snprintf(tmp, sizeof tmp, "\\u%04x", cp), put(user, tmp, strlen(tmp));
        } else {
            put(user, (const char *)p, len);
        }
        p += len;
        n -= len;
    }
}

static void put_file(void *user, const char *s, size_t n) { fwrite(s, 1, n, (FILE *)user); }

void craft_term_fputs(const char *s, FILE *f, int keep_newlines)
{
    escape(s ? s : "-", keep_newlines, put_file, f);
}

typedef struct {
    char *buf;
    size_t cap, n;
    int cut;
} sink;

static void put_buf(void *user, const char *s, size_t n)
{
    sink *k = user;
    if (k->cut)
        return;
    if (k->n + n + 1 > k->cap) {
        /* no partial escape or character: cut before it, then "..." */
        k->cut = 1;
        while (k->n + 4 > k->cap && k->n)
            k->n--;
        /* step back out of a UTF-8 sequence */
        while (k->n && ((unsigned char)k->buf[k->n] & 0xC0) == 0x80)
            k->n--;
        if (k->n + 4 <= k->cap)
            memcpy(k->buf + k->n, "...", 3), k->n += 3;
        return;
    }
    memcpy(k->buf + k->n, s, n);
    k->n += n;
}

const char *craft_term_str(const char *s, char *buf, size_t cap)
{
    if (!cap)
        return "";
    sink k = {buf, cap, 0, 0};
    escape(s ? s : "-", 0, put_buf, &k);
    buf[k.n < cap ? k.n : cap - 1] = 0;
    return buf;
}
