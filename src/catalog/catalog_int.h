/* Between the parts of catalog/: the paged reader feeds the assembler parsed objects. */
#ifndef CADENCE_CATALOG_CATALOG_INT_H
#define CADENCE_CATALOG_CATALOG_INT_H

#include <jansson.h>

#include "catalog/catalog.h"

/* Errors then count "object N" instead of "line N". */
void shop_jsonl_objects(struct shop_jsonl *j);

/* One object, as if it were one line (a product, or a child with "__parentId"). The caller keeps
 * its reference. */
int shop_jsonl_take(struct shop_jsonl *j, json_t *o);

#endif
