/*
 * Checking a connection string without connecting.
 */
#include "internal.h"

#include <avatarcore/db.h>

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

AVC_API char *
avc_db_conninfo_check(const char *conninfo)
{
    PQconninfoOption *opts;
    char *errmsg = NULL, *why;
    size_t n;

    if (conninfo == NULL || *conninfo == '\0') {
        return strdup("empty");
    }
    opts = PQconninfoParse(conninfo, &errmsg);
    if (opts) {
        PQconninfoFree(opts);
        return NULL;
    }
    if (errmsg == NULL) {
        return strdup("out of memory");
    }
    why = strdup(errmsg);
    PQfreemem(errmsg);
    if (why) {
        n = strlen(why);
        while (n && (why[n - 1] == '\n' || why[n - 1] == ' ')) {
            why[--n] = '\0';
        }
    }
    return why;
}
