/*
 * A process-wide registry of Prometheus counters that any module may increment (the web server
 * counts requests; the Klaviyo client, the plan engine and the queue can add their own families)
 * and that /metrics renders in the Prometheus text exposition format.
 *
 * A counter is identified by its family name and its label set, given as name/value pairs. Only
 * counters that have been incremented at least once exist, so nothing is exported that no code
 * maintains. Thread-safe: one mutex around a small list (the number of distinct label sets is
 * small: routes x statuses, operations x outcomes).
 */
#ifndef CADENCE_COMMON_METRICS_H
#define CADENCE_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Most label pairs one counter may have. */
#define METRICS_MAX_LABELS 4

/* Adds `delta` to the counter `family`{labels}. `help` is the family's one-line description (the
 * first one given is kept). `labels` holds `n_labels` name/value pairs: labels[2i] is a name
 * ([a-zA-Z_][a-zA-Z0-9_]*), labels[2i+1] its value (any text; escaped when rendered). CAD_EINVAL
 * for a bad family or label name or too many labels, CAD_ENOMEM when out of memory. */
int metrics_counter_add(const char *family, const char *help, const char *const *labels,
                        size_t n_labels, uint64_t delta);

/* The whole registry in the text exposition format (families sorted by name, label sets in the
 * order they first appeared). *out is malloc'd and NUL-terminated; caller frees. */
int metrics_render(char **out, size_t *out_len);

/* Forgets every counter (tests). */
void metrics_reset(void);

#endif
