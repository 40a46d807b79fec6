/* Helpers shared by the unit tests: temporary directories removed after each test. */
#ifndef CADENCE_TESTS_TESTUTIL_H
#define CADENCE_TESTS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Creates a fresh directory under $TMPDIR; returns a malloc'd path. */
static inline char *test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/cadence-test-XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    return dir ? strdup(dir) : NULL;
}

/* rm -rf the directory and free the path. */
static inline void test_rmdir(char *dir)
{
    if (!dir)
        return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
    free(dir);
}

#endif
