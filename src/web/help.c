/*
 * /help/klaviyo, "Connect Klaviyo in 3 minutes": rendered from assets/klaviyo-setup-help.txt, the
 * one source of its wording, embedded at build time. The text is the plain-text form of a designed
 * page; this file lays it out again from its shape, so editing the text edits the page:
 *
 *   header block (brand, back link, breadcrumb) / title (2 lines) / intro / label + numbered list /
 *   eyebrow + heading / steps: a line holding only a number, a title, then paragraphs, option
 *   cards ("// ..."), a scope list (CamelCase run), a warning ("⚠ ...") and an illustration of
 *   Klaviyo's screen (from a "klaviyo.com..." address line, or a card whose next block is
 *   ALL CAPS, until a long paragraph) / sections: a one-word eyebrow and a heading, then
 *   title/text pairs / the last two blocks: the closing call to action.
 *
 * A few inline phrases become links, code or emphasis (the table below); where the plain text lost
 * the space after such a phrase ("keyfrom"), it is put back.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/embed.h"
#include "common/util.h"
#include "web/web_internal.h"

extern const struct cad_embedded web_help[];

#define MAX_LINES  400
#define MAX_BLOCKS 200

struct line {
    const char *s;
    size_t n;
};

struct block {
    struct line *l;
    int n;
};

struct doc {
    struct line lines[MAX_LINES];
    struct block b[MAX_BLOCKS];
    int nb;
};

static bool is_number_line(struct line l)
{
    if (l.n == 0 || l.n > 2)
        return false;
    for (size_t i = 0; i < l.n; i++)
        if (!isdigit((unsigned char)l.s[i]))
            return false;
    return true;
}

static bool starts(struct line l, const char *prefix)
{
    size_t n = strlen(prefix);
    return l.n >= n && memcmp(l.s, prefix, n) == 0;
}

/* Blocks are runs of non-empty lines; a line holding only a step number is a block of its own,
 * and an address line ("klaviyo.com...") starts a block (the illustration's). */
static void split(const char *text, size_t len, struct doc *d)
{
    int nl = 0;
    d->nb = 0;
    const char *p = text, *end = text + len;
    bool open = false;
    while (p < end && nl < MAX_LINES && d->nb < MAX_BLOCKS) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        struct line l = {p, (size_t)(e - p)};
        while (l.n && (l.s[l.n - 1] == '\r' || l.s[l.n - 1] == ' '))
            l.n--;
        p = e + 1;
        if (l.n == 0) {
            open = false;
            continue;
        }
        bool num = is_number_line(l);
        d->lines[nl] = l;
        if (!open || num || starts(l, "klaviyo.com")) {
            d->b[d->nb].l = &d->lines[nl];
            d->b[d->nb].n = 0;
            d->nb++;
        }
        d->b[d->nb - 1].n++;
        nl++;
        open = !num;
    }
}

static bool all_caps(const struct block *b)
{
    bool letter = false;
    for (size_t i = 0; i < b->l[0].n; i++) {
        unsigned char c = (unsigned char)b->l[0].s[i];
        if (islower(c))
            return false;
        letter |= isupper(c) != 0;
    }
    return b->n == 1 && letter;
}

static bool camel_run(const struct block *b)
{
    if (b->n != 1 || b->l[0].n < 8 || memchr(b->l[0].s, ' ', b->l[0].n))
        return false;
    int caps = 0;
    for (size_t i = 0; i < b->l[0].n; i++) {
        if (!isalpha((unsigned char)b->l[0].s[i]))
            return false;
        caps += isupper((unsigned char)b->l[0].s[i]) != 0;
    }
    return caps >= 3;
}

/* The longest line's length in characters (UTF-8 code points). */
static size_t block_width(const struct block *b)
{
    size_t w = 0;
    for (int i = 0; i < b->n; i++) {
        size_t chars = 0;
        for (size_t k = 0; k < b->l[i].n; k++)
            chars += ((unsigned char)b->l[i].s[k] & 0xc0) != 0x80;
        if (chars > w)
            w = chars;
    }
    return w;
}

/* ---- inline phrases ---- */

struct phrase {
    const char *text;
    const char *open, *close;
    bool once;
};

static const struct phrase phrases[] = {
    {"klaviyo.com/account#api-keys-tab",
     "<a href=\"https://www.klaviyo.com/account#api-keys-tab\" rel=\"noopener noreferrer\">",
     "</a>", false},
    {"klaviyo.com/login", "<a href=\"https://www.klaviyo.com/login\" rel=\"noopener noreferrer\">",
     "</a>", false},
    {"private API key", "<strong>", "</strong>", true},
    {"Create Private API Key", "<strong>", "</strong>", false},
    {"Continue without entering a key", "<strong>", "</strong>", false},
    {"Full Access", "<strong>", "</strong>", false},
    {"Cadenceso", NULL, NULL, false}, /* "call it Cadenceso": the name, then "so" */
    {"pk_", "<code>", "</code>", false},
};

static void inline_text(struct wbuf *b, const char *s, size_t n, bool *used)
{
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        const struct phrase *hit = NULL;
        size_t k;
        for (k = 0; k < CAD_ARRAY_LEN(phrases); k++) {
            size_t pl = strlen(phrases[k].text);
            if ((!phrases[k].once || !used[k]) && n - i >= pl &&
                memcmp(s + i, phrases[k].text, pl) == 0) {
                hit = &phrases[k];
                break;
            }
        }
        if (!hit) {
            i++;
            continue;
        }
        used[k] = true;
        wbuf_html_n(b, s + run, i - run);
        size_t pl = strlen(hit->text);
        if (!hit->open) { /* a glued word: the phrase's first 7 bytes, emphasised, then a space */
            wbuf_puts(b, "<strong>");
            wbuf_html_n(b, s + i, 7);
            wbuf_puts(b, "</strong> ");
            wbuf_html_n(b, s + i + 7, pl - 7);
        } else {
            wbuf_puts(b, hit->open);
            wbuf_html_n(b, s + i, pl);
            wbuf_puts(b, hit->close);
            if (i + pl < n && isalpha((unsigned char)s[i + pl]) && strcmp(hit->text, "pk_") != 0)
                wbuf_puts(b, " ");
        }
        i += pl;
        run = i;
    }
    wbuf_html_n(b, s + run, n - run);
}

static void para(struct wbuf *b, const struct block *bl, const char *cls, bool *used)
{
    for (int i = 0; i < bl->n; i++) {
        wbuf_fmt(b, "<p%S%S%S>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
        inline_text(b, bl->l[i].s, bl->l[i].n, used);
        wbuf_puts(b, "</p>");
    }
}

static void text_el(struct wbuf *b, const char *tag, const char *attrs, struct line l)
{
    wbuf_fmt(b, "<%S%S>", tag, attrs ? attrs : "");
    wbuf_html_n(b, l.s, l.n);
    wbuf_fmt(b, "</%S>", tag);
}

/* ---- the illustration of Klaviyo's screen ---- */

static void mock_line(struct wbuf *b, struct line l, bool last)
{
    if (starts(l, "pk_") && l.n > 7 && memcmp(l.s + l.n - 4, "Copy", 4) == 0) {
        wbuf_puts(b, "<p class=\"mock-key\"><code>");
        wbuf_html_n(b, l.s, l.n - 4);
        wbuf_puts(b, "</code><span class=\"mock-button\">Copy</span></p>");
        return;
    }
    if (last && l.s[l.n - 1] != '.') {
        wbuf_puts(b, "<p><span class=\"mock-button\">");
        wbuf_html_n(b, l.s, l.n);
        wbuf_puts(b, "</span></p>");
        return;
    }
    wbuf_puts(b, "<p>");
    size_t run = 0;
    for (size_t i = 0; i < l.n; i++) { /* [email field] -> an empty input drawn as a box */
        if (l.s[i] != '[')
            continue;
        const char *close = memchr(l.s + i, ']', l.n - i);
        if (!close)
            break;
        wbuf_html_n(b, l.s + run, i - run);
        wbuf_puts(b, "<span class=\"mock-input\">");
        wbuf_html_n(b, l.s + i + 1, (size_t)(close - l.s) - i - 1);
        wbuf_puts(b, "</span>");
        i = (size_t)(close - l.s);
        run = i + 1;
    }
    wbuf_html_n(b, l.s + run, l.n - run);
    wbuf_puts(b, "</p>");
}

static void mock(struct wbuf *b, const struct block *bl, int n)
{
    wbuf_puts(b, "<figure class=\"mock\" aria-label=\"What you will see in Klaviyo\">");
    int first = 0;
    if (starts(bl[0].l[0], "klaviyo.com")) {
        wbuf_puts(b, "<div class=\"mock-bar\" aria-hidden=\"true\"><span class=\"mock-dots\">"
                     "</span>");
        text_el(b, "span", " class=\"mock-url\"", bl[0].l[0]);
        wbuf_puts(b, "</div>");
        first = 1;
    }
    wbuf_puts(b, "<div class=\"mock-body\">");
    if (first && bl[0].n > 1) {
        /* The address line's own block lists the settings sidebar; the page it opens is the
         * title that follows. */
        struct line title = n > 1 ? bl[1].l[0] : (struct line){"", 0};
        wbuf_puts(b, "<ul class=\"mock-side\">");
        for (int i = 1; i < bl[0].n; i++) {
            bool on = bl[0].l[i].n == title.n && memcmp(bl[0].l[i].s, title.s, title.n) == 0;
            text_el(b, "li", on ? " class=\"on\"" : "", bl[0].l[i]);
        }
        wbuf_puts(b, "</ul>");
    }
    wbuf_puts(b, "<div class=\"mock-main\">");
    for (int k = first; k < n; k++) {
        for (int i = 0; i < bl[k].n; i++) {
            if (k == first && i == 0)
                text_el(b, "p", " class=\"mock-title\"", bl[k].l[i]);
            else if (all_caps(&bl[k]))
                text_el(b, "p", " class=\"mock-label\"", bl[k].l[i]);
            else
                mock_line(b, bl[k].l[i], k == n - 1 && i == bl[k].n - 1);
        }
    }
    wbuf_puts(b, "</div></div></figure>");
}

/* ---- the page ---- */

static bool mock_starts(const struct doc *d, int i)
{
    return starts(d->b[i].l[0], "klaviyo.com") || (i + 1 < d->nb && all_caps(&d->b[i + 1]));
}

/* A one-word block followed by a short block ending in '.', which opens a section. */
static bool section_starts(const struct doc *d, int i)
{
    return i + 1 < d->nb && d->b[i].n == 1 && !memchr(d->b[i].l[0].s, ' ', d->b[i].l[0].n) &&
           !is_number_line(d->b[i].l[0]) && d->b[i + 1].n == 1 && block_width(&d->b[i + 1]) < 40 &&
           d->b[i + 1].l[0].s[d->b[i + 1].l[0].n - 1] == '.';
}

static void render_step(struct wbuf *b, const struct doc *d, int *ip, bool *used)
{
    int i = *ip;
    struct line num = d->b[i].l[0];
    wbuf_puts(b, "<li class=\"step\" id=\"step-");
    wbuf_html_n(b, num.s, num.n);
    wbuf_puts(b, "\"><div class=\"step-num\" aria-hidden=\"true\">");
    wbuf_html_n(b, num.s, num.n);
    wbuf_puts(b, "</div><div class=\"step-body\">");
    i++;
    if (i < d->nb)
        text_el(b, "h3", "", d->b[i++].l[0]);
    bool in_options = false;
    while (i < d->nb && !is_number_line(d->b[i].l[0]) && !section_starts(d, i) && i < d->nb - 2) {
        const struct block *bl = &d->b[i];
        if (starts(bl->l[0], "// ")) {
            if (!in_options)
                wbuf_puts(b, "<div class=\"options\">");
            in_options = true;
            wbuf_puts(b, "<div class=\"option\">");
            text_el(b, "p", " class=\"option-label\"",
                    (struct line){bl->l[0].s + 3, bl->l[0].n - 3});
            if (i + 1 < d->nb)
                text_el(b, "p", " class=\"option-title\"", d->b[i + 1].l[0]);
            if (i + 2 < d->nb)
                para(b, &d->b[i + 2], NULL, used);
            wbuf_puts(b, "</div>");
            i += 3;
            continue;
        }
        if (in_options) {
            wbuf_puts(b, "</div>");
            in_options = false;
        }
        if (mock_starts(d, i)) {
            int j = i + 1;
            while (j < d->nb && !is_number_line(d->b[j].l[0]) && block_width(&d->b[j]) <= 80 &&
                   !section_starts(d, j))
                j++;
            mock(b, &d->b[i], j - i);
            i = j;
        } else if (camel_run(bl)) {
            wbuf_puts(b, "<ul class=\"chips\">");
            struct line l = bl->l[0];
            size_t start = 0;
            for (size_t k = 1; k <= l.n; k++)
                if (k == l.n || isupper((unsigned char)l.s[k])) {
                    text_el(b, "li", "", (struct line){l.s + start, k - start});
                    start = k;
                }
            wbuf_puts(b, "</ul>");
            i++;
        } else if (starts(bl->l[0], "\xE2\x9A\xA0")) {
            wbuf_puts(b, "<div class=\"warning\" role=\"note\">");
            para(b, bl, NULL, used);
            wbuf_puts(b, "</div>");
            i++;
        } else {
            para(b, bl, NULL, used);
            i++;
        }
    }
    if (in_options)
        wbuf_puts(b, "</div>");
    wbuf_puts(b, "</div></li>");
    *ip = i;
}

static void render_help(struct wbuf *b, const struct doc *d)
{
    bool used[CAD_ARRAY_LEN(phrases)] = {0};
    int i = 0;
    if (d->nb < 8) {
        for (; i < d->nb; i++)
            para(b, &d->b[i], NULL, used);
        return;
    }
    /* Header: brand (already in the bar), back link, breadcrumb. */
    const struct block *h = &d->b[i++];
    wbuf_puts(b, "<div class=\"help-top\">");
    if (h->n > 1)
        text_el(b, "a", " href=\"/\" class=\"back\" data-back", h->l[1]);
    if (h->n > 2)
        text_el(b, "p", " class=\"crumb\"", h->l[2]);
    wbuf_puts(b, "</div>");
    /* Title and intro. */
    const struct block *t = &d->b[i++];
    wbuf_puts(b, "<header class=\"hero\"><h1>");
    wbuf_html_n(b, t->l[0].s, t->l[0].n);
    if (t->n > 1) {
        wbuf_puts(b, " <span class=\"accent\">");
        wbuf_html_n(b, t->l[1].s, t->l[1].n);
        wbuf_puts(b, "</span>");
    }
    wbuf_puts(b, "</h1>");
    para(b, &d->b[i++], "lead", used);
    wbuf_puts(b, "</header>");
    /* Label + numbered list. */
    if (i + 1 < d->nb && starts(d->b[i + 1].l[0], "  1.")) {
        wbuf_puts(b, "<section class=\"tldr\" aria-labelledby=\"tldr\">");
        text_el(b, "h2", " id=\"tldr\"", d->b[i].l[0]);
        wbuf_puts(b, "<ol>");
        const struct block *lst = &d->b[i + 1];
        for (int k = 0; k < lst->n; k++) {
            const char *s = lst->l[k].s;
            size_t n = lst->l[k].n, skip = strspn(s, " 0123456789.");
            wbuf_puts(b, "<li>");
            inline_text(b, s + skip, n - skip, used);
            wbuf_puts(b, "</li>");
        }
        wbuf_puts(b, "</ol></section>");
        i += 2;
    }
    bool steps_open = false, section_open = false;
    while (i < d->nb) {
        if (i == d->nb - 2) { /* the closing call to action */
            if (steps_open)
                wbuf_puts(b, "</ol></section>");
            if (section_open)
                wbuf_puts(b, "</div></section>");
            wbuf_puts(b, "<section class=\"cta\">");
            text_el(b, "h2", "", d->b[i].l[0]);
            para(b, &d->b[i + 1], NULL, used);
            wbuf_puts(b, "<p><a class=\"button primary\" href=\"/\" data-back>");
            if (h->n > 1)
                wbuf_html_n(b, h->l[1].s, h->l[1].n);
            wbuf_puts(b, "</a></p></section>");
            break;
        }
        if (is_number_line(d->b[i].l[0])) {
            if (!steps_open)
                wbuf_puts(b, "<section class=\"walk\"><ol class=\"walk-steps\">");
            steps_open = true;
            render_step(b, d, &i, used);
            continue;
        }
        if (steps_open) {
            wbuf_puts(b, "</ol></section>");
            steps_open = false;
        }
        bool opens_section =
            section_starts(d, i) ||
            (i + 1 < d->nb && is_number_line(d->b[i + 2 < d->nb ? i + 2 : i].l[0]));
        if (opens_section) {
            if (section_open)
                wbuf_puts(b, "</div></section>");
            char id[64];
            char word[64];
            snprintf(word, sizeof word, "%.*s", (int)d->b[i].l[0].n, d->b[i].l[0].s);
            slugify(word, id, sizeof id);
            wbuf_fmt(b, "<section class=\"part\" aria-labelledby=\"%s\">", id);
            text_el(b, "p", " class=\"eyebrow\"", d->b[i].l[0]);
            wbuf_fmt(b, "<h2 id=\"%s\">", id);
            wbuf_html_n(b, d->b[i + 1].l[0].s, d->b[i + 1].l[0].n);
            wbuf_puts(b, "</h2>");
            i += 2;
            if (i < d->nb && is_number_line(d->b[i].l[0])) {
                wbuf_puts(b, "</section>");
                continue;
            }
            section_open = true;
            wbuf_fmt(b, "<div class=\"%S\">", strcmp(id, "security") == 0 ? "grid" : "faq");
            continue;
        }
        /* Title/text pairs inside a section. */
        char qid[80] = "q-";
        char title[200];
        snprintf(title, sizeof title, "%.*s", (int)d->b[i].l[0].n, d->b[i].l[0].s);
        slugify(title, qid + 2, sizeof qid - 2);
        wbuf_fmt(b, "<div class=\"item\" id=\"%s\"><h3>", qid);
        wbuf_html_n(b, d->b[i].l[0].s, d->b[i].l[0].n);
        wbuf_puts(b, "</h3>");
        if (i + 1 < d->nb - 2)
            para(b, &d->b[i + 1], NULL, used);
        wbuf_puts(b, "</div>");
        i += i + 1 < d->nb - 2 ? 2 : 1;
    }
}

void help_klaviyo_get(struct web_req *r)
{
    const struct cad_embedded *e = cad_embedded_find(web_help, "klaviyo-setup-help.txt");
    static _Thread_local struct doc d;
    r->status = 200;
    r->cache = "public, max-age=300";
    page_begin(r, "Connect Klaviyo in 3 minutes");
    if (e) {
        split((const char *)e->data, e->len, &d);
        wbuf_puts(&r->out, "<article class=\"help\">");
        render_help(&r->out, &d);
        wbuf_puts(&r->out, "</article>");
    }
    page_end(r);
}
