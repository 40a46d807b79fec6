/*
 * The page frame every HTML response shares: document head (one stylesheet, one deferred script,
 * both embedded assets), the header bar, and the short message pages used for errors.
 */
#include "web/web_internal.h"

void page_begin(struct web_req *r, const char *title)
{
    if (!r->status)
        r->status = 200;
    wbuf_fmt(
        &r->out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"robots\" content=\"noindex\">\n"
        "<title>%s \xC2\xB7 Cadence</title>\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        "<link rel=\"stylesheet\" href=\"/assets/cadence.css\">\n"
        "<script src=\"/assets/cadence.js\" defer></script>\n</head>\n<body>\n"
        "<a class=\"skip\" href=\"#main\">Skip to content</a>\n"
        "<header class=\"bar\"><div class=\"bar-in\"><span class=\"logo\" aria-hidden=\"true\">"
        "</span><span class=\"brand\">Cadence</span></div></header>\n"
        "<main id=\"main\" class=\"wrap\" tabindex=\"-1\">\n",
        title);
}

void page_end(struct web_req *r)
{
    wbuf_puts(&r->out, "</main>\n<footer class=\"foot\"><div class=\"wrap\">Cadence keeps your "
                       "keys encrypted and logs every call it makes to your accounts.</div>"
                       "</footer>\n</body>\n</html>\n");
}

void page_message(struct web_req *r, int status, const char *title, const char *text)
{
    wbuf_free(&r->out);
    r->out.failed = false;
    r->status = status;
    r->content_type = NULL;
    page_begin(r, title);
    wbuf_fmt(&r->out, "<section class=\"card\"><h1>%s</h1><p>%s</p></section>\n", title, text);
    page_end(r);
}
