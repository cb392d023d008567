/*
 * Helpers shared by the users and dealerships operations.
 *
 * Scoping: every query of these operations takes the caller's scope as a
 * bound parameter, NULL for a super admin (everything) or the caller's
 * dealership id ("0" for an account without one, which matches nothing),
 * and applies it in its WHERE clause, so that a row of another dealership
 * is never read, counted or written, and is answered like a missing one.
 */
#ifndef AVC_USERS_INT_H
#define AVC_USERS_INT_H

#include "../app/app_int.h"
#include "../app/validate.h"

/* Decimal text of a long long: sign, 19 digits, NUL. */
#define AVC__USERS_NUM 24

/* The caller's scope parameter: NULL for a super admin, else buf. */
const char *avc__users_scope(const avc_call_t *call,
                             char buf[AVC__USERS_NUM]);

/*
 * A validator with no body, for routes that read only the path and the
 * query.  Replies 500 and returns AVC_ENOMEM when out of memory.
 */
int avc__users_v_init(avc__v_t *v, avc_call_t *call);

/*
 * The path parameter name as a positive id (1 to 18 digits): 1 and *id,
 * or -1 with a "path.NAME" detail recorded.
 */
int avc__users_path_id(avc__v_t *v, const char *name, long long *id);

/*
 * A query boolean as FastAPI reads one (true/false, 1/0, yes/no, on/off,
 * any case): 1 and *out, 0 when absent, -1 with a detail recorded.
 */
int avc__users_qbool(avc__v_t *v, const char *name, int *out);

/* A query enum: 1 and *out (from allowed), 0 when absent, -1. */
int avc__users_qenum(avc__v_t *v, const char *name,
                     const char *const *allowed, const char **out);

/*
 * When details were recorded: reply 422, release the validator and
 * return 1 (the call may be gone).  Else 0, and the validator (whose body
 * the caller's values point into) is still the caller's to release.
 */
int avc__users_v_check(avc__v_t *v);

#endif /* AVC_USERS_INT_H */
