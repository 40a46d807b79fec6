/* Thread-local last-error slot; see err.h for the convention. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/log.h"

static _Thread_local char last_error[1024];

int cad_fail_msg(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    log_redact(last_error);
    return code;
}

const char *cad_errmsg(void)
{
    return last_error;
}

void cad_err_clear(void)
{
    last_error[0] = '\0';
}

const char *cad_strstatus(int code)
{
    switch (code) {
    case CAD_OK:
        return "ok";
    case CAD_EINVAL:
        return "invalid input";
    case CAD_ENOTFOUND:
        return "not found";
    case CAD_EEXIST:
        return "already exists";
    case CAD_EIO:
        return "I/O error";
    case CAD_ECRYPTO:
        return "cryptographic failure";
    case CAD_ESTATE:
        return "not allowed in this state";
    case CAD_ENOMEM:
        return "out of memory";
    case CAD_EPERM:
        return "permission denied";
    case CAD_ECORRUPT:
        return "integrity check failed";
    case CAD_EVERSION:
        return "unsupported version";
    case CAD_ENET:
        return "network error";
    case CAD_EAUTH:
        return "authentication failed";
    case CAD_EREMOTE:
        return "remote error";
    case CAD_EUNKNOWN:
        return "outcome unknown";
    default:
        return "error";
    }
}
