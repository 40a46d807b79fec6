/*
 * The one error convention of Cadence (after libgit2): every fallible function returns an int,
 * CAD_OK (0) on success or a negative CAD_E* code, and leaves a message for a person in a
 * thread-local slot that cad_errmsg() returns. Messages pass through the log redaction filter, so
 * a key that a bug passes into an error message is masked before anyone can read it.
 */
#ifndef CADENCE_COMMON_ERR_H
#define CADENCE_COMMON_ERR_H

enum cad_status {
    CAD_OK = 0,
    CAD_EINVAL = -1,    /* bad input from a caller or from outside */
    CAD_ENOTFOUND = -2, /* no such tenant, credential, record ... */
    CAD_EEXIST = -3,    /* already exists */
    CAD_EIO = -4,       /* file system or database failure */
    CAD_ECRYPTO = -5,   /* a seal did not open, a MAC did not match, a CSPRNG failed */
    CAD_ESTATE = -6,    /* the operation is not allowed in the current state */
    CAD_ENOMEM = -7,
    CAD_EPERM = -8,     /* unsafe permissions, or an actor that may not do this */
    CAD_ECORRUPT = -9,  /* stored data failed an integrity check */
    CAD_EVERSION = -10, /* a database or file from a newer Cadence */
    CAD_ENET = -11,     /* a remote service could not be reached */
    CAD_EAUTH = -12,    /* a remote service rejected our credentials */
    CAD_EREMOTE = -13,  /* a remote service refused the request */
    CAD_EUNKNOWN = -14, /* the outcome of a remote write is unknown */
};

/* Records a printf-style message for `code`; returns `code`. */
int cad_fail_msg(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* `return cad_fail(CAD_EINVAL, "...", ...)`: records the message and yields the code. A macro
 * (a GNU statement expression, `code` evaluated once) so that static analysers see that the
 * value returned is the code passed in. */
#define cad_fail(code, ...)                                                                        \
    __extension__({                                                                                \
        int cad_fail_code_ = (code);                                                               \
        cad_fail_msg(cad_fail_code_, __VA_ARGS__);                                                 \
        cad_fail_code_;                                                                            \
    })

/* The last message recorded on this thread ("" when none). Valid until the next cad_fail(). */
const char *cad_errmsg(void);

/* A short fixed name for a status code ("invalid input", "not found", ...). */
const char *cad_strstatus(int code);

void cad_err_clear(void);

#endif
