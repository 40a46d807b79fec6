/* Files compiled into the binary by cmake/embed.cmake: migrations, web assets, help text. */
#ifndef CADENCE_COMMON_EMBED_H
#define CADENCE_COMMON_EMBED_H

#include <stddef.h>

struct cad_embedded {
    const char *name;          /* file name, no directory */
    const unsigned char *data; /* NUL-terminated for convenience; len excludes the NUL */
    size_t len;
};

/* The entry named `name` in a NULL-terminated table, or NULL. */
const struct cad_embedded *cad_embedded_find(const struct cad_embedded *table, const char *name);

#endif
