/*
 * config_impl.h - private to the config module (config.c, options.c,
 * validate.c, secretsrc.c): helpers its files share.  Nothing outside
 * those four files includes it.
 */
#ifndef PO_CONFIG_IMPL_H
#define PO_CONFIG_IMPL_H

#include <sys/types.h>
#include "config.h"
#include "err.h"

/* ' ', '\t', '\r', '\f', '\v'. */
int po_cfg_is_space(char c);

/* Whether s is a valid profile name: [A-Za-z0-9_.-]{1,64}, no leading '.'. */
int po_cfg_profile_name_ok(const char *s);

/* Whether s holds a control character other than '\t' (or DEL). */
int po_cfg_has_control_char(const char *s);

/* Trim s in place: the result skips leading white space, and a NUL
 * replaces the trailing white space. */
char *po_cfg_trim(char *s);

/* "readable by others" or "open to group or others", for mode. */
const char *po_cfg_exposure(mode_t mode);

/* value as shown in a message: a fixed text when it holds control
 * characters, which could forge log lines or drive a terminal. */
const char *po_cfg_shown(const char *value);

/* "profile 'NAME' (FILE:LINE)" into buf. */
void po_cfg_profile_label(const po_profile *p, char *buf, size_t n);

/* Collects problems for po_config_check: with fn set, po_cfg_report()
 * hands each message to fn, remembers the first code and lets the caller
 * go on; without fn (or with a NULL reporter) it returns rc so that the
 * caller stops. */
typedef struct po_cfg_reporter {
    po_diag_fn fn;
    void *ctx;
    po_rc first;
} po_cfg_reporter;

po_rc po_cfg_report(po_cfg_reporter *r, po_rc rc, const po_err *err);

/* po_fail(err, PO_CONFIG, ...) then po_cfg_report(). */
po_rc po_cfg_problem(po_cfg_reporter *r, po_err *err, const char *fmt, ...)
    PO_PRINTF(3, 4);

/* The checks of po_profile_validate; with r->fn set every problem is
 * reported, otherwise the first one is returned. */
po_rc po_cfg_validate(const po_profile *p, po_cfg_reporter *r, po_err *err);

/* po_cfg_validate and pam_oauth's own rules (po_profile_validate_pam). */
po_rc po_cfg_validate_pam(const po_profile *p, po_cfg_reporter *r, po_err *err);

#endif
