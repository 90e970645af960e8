/*
 * flow_impl.h - private to the flow module (flow.c, fleet.c): the pieces
 * of the local flow that the fleet tier reuses, and the fleet tier's entry
 * points that po_flow_* call.  Nothing outside those two files includes
 * it.
 */
#ifndef PO_FLOW_IMPL_H
#define PO_FLOW_IMPL_H

#include <stdint.h>
#include "cache.h"
#include "flow.h"
#include "oauth.h"

/* flow.c */

/* The flow's wall clock (f->clock or time()), in seconds. */
int64_t po_flowi_now(const po_flow *f);

/* The absolute deadline of a call (f->deadline_ms, or now + timeout). */
uint64_t po_flowi_deadline(const po_flow *f);

/* One token request for g, checked against and counted in e's (this
 * host's) budget; *counted when the counter changed. */
po_rc po_flowi_request(const po_flow *f, const po_grant_input *g,
                       unsigned flags, uint64_t deadline, po_cache_entry *e,
                       int *counted, po_token *tok, po_err *err);

/* Write e after a failed request (the counter, a dropped refresh token);
 * a failure is logged. */
void po_flowi_write_after_failure(const po_flow *f, const char *dir,
                                  const po_cache_entry *e);

/* Replace e's token with *tok (taken over: tok is left empty). */
void po_flowi_take_token(po_cache_entry *e, po_token *tok);

/* "YYYY-MM-01" of the month after month ("YYYY-MM"), into out[16]. */
void po_flowi_next_month(const char *month, char out[16]);

/* fleet.c: the fleet tier (store.h), under the local lock.  *handled = 0
 * with PO_OK means the store failed, shared_cache_fallback is local and
 * the caller goes on with the local cache alone (e may have been given
 * the fleet's refresh token). */

/* po_flow_get's tier: the fleet's token when fresh, else the fleet lock
 * and a renewal published for the fleet. */
po_rc po_fleet_get(const po_flow *f, unsigned flags, uint64_t deadline,
                   const char *dir, po_cache_entry *e, po_token *out,
                   int *handled, po_err *err);

/* po_flow_login's tier: the password grant g under the fleet lock. */
po_rc po_fleet_login(const po_flow *f, const po_grant_input *g, unsigned flags,
                     uint64_t deadline, const char *dir, po_cache_entry *e,
                     po_token *out, int *handled, po_err *err);

/* The fleet's side of po_flow_invalidate (all 0) and po_flow_erase
 * (all 1). */
po_rc po_fleet_drop(const po_flow *f, const char *token, int all, po_err *err);

#endif
