/*
 * The API's shared objects (API.md "Shared objects") from database rows:
 * one select list and one serialiser per object, used by every operation
 * that returns one.
 */
#include "app_int.h"

#include <stdlib.h>
#include <string.h>

static json_t *
avc_text(avc_db_res_t *res, int row, int col)
{
    return avc_db_res_isnull(res, row, col)
           ? json_null() : json_string(avc_db_res_value(res, row, col));
}

static json_t *
avc_bigint(avc_db_res_t *res, int row, int col)
{
    return avc_db_res_isnull(res, row, col)
           ? json_null()
           : json_integer(atoll(avc_db_res_value(res, row, col)));
}

static json_t *
avc_bool(avc_db_res_t *res, int row, int col)
{
    return json_boolean(strcmp(avc_db_res_value(res, row, col), "t") == 0);
}

void
avc__reply_rows(avc_call_t *call, int err, avc_db_res_t *res,
    json_t *(*row)(avc_db_res_t *res, int i))
{
    json_t *a;
    int i, n;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    a = json_array();
    n = avc_db_res_rows(res);
    for (i = 0; a && i < n; i++) {
        if (json_array_append_new(a, row(res, i)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    /* NULL (out of memory) answers 500 */
    avc__call_json(call, 200, a);
}

json_t *
avc__user_json(avc_db_res_t *res, int row)
{
    return avc__user_json_at(res, row, 0);
}

/* A User from AVC__USER_COLS starting at column c0. */
json_t *
avc__user_json_at(avc_db_res_t *res, int row, int c0)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
                     " s:o}",
                     "id", avc_bigint(res, row, c0 + 0),
                     "email", avc_text(res, row, c0 + 1),
                     "first_name", avc_text(res, row, c0 + 2),
                     "last_name", avc_text(res, row, c0 + 3),
                     "role", avc_text(res, row, c0 + 4),
                     "is_active", avc_bool(res, row, c0 + 5),
                     "is_verified", avc_bool(res, row, c0 + 6),
                     "dealership_id", avc_bigint(res, row, c0 + 7),
                     "last_login", avc_text(res, row, c0 + 8),
                     "created_at", avc_text(res, row, c0 + 9),
                     "updated_at", avc_text(res, row, c0 + 10));
}

json_t *
avc__dealership_json(avc_db_res_t *res, int row)
{
    json_t *rag = NULL;

    if (!avc_db_res_isnull(res, row, 6)) {
        rag = json_loads(avc_db_res_value(res, row, 6), 0, NULL);
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "id", avc_bigint(res, row, 0),
                     "name", avc_text(res, row, 1),
                     "address", avc_text(res, row, 2),
                     "contact_email", avc_text(res, row, 3),
                     "contact_phone", avc_text(res, row, 4),
                     "is_active", avc_bool(res, row, 5),
                     "rag_config", rag ? rag : json_null(),
                     "created_at", avc_text(res, row, 7),
                     "updated_at", avc_text(res, row, 8));
}
