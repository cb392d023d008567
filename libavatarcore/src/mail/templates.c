/*
 * The built-in mail templates: the files of libavatarcore/templates/mail/
 * (NAME.subject, NAME.txt, NAME.html), built into the library by
 * libavatarcore/embed.sh (src/util/embedded.c).
 */
#include "mail_internal.h"
#include "embedded.h"

#include <stdio.h>

const char *const avc__mail_template_names[] = {
    "invite",
    "password_reset",
    "report",
    NULL
};

const char *
avc__mail_template_builtin(const char *name, const char *part)
{
    char path[128];
    int n;

    if (name == NULL || part == NULL) {
        return NULL;
    }
    n = snprintf(path, sizeof(path), "templates/mail/%s.%s", name, part);
    if (n < 0 || (size_t) n >= sizeof(path)) {
        return NULL;
    }
    return avc__embedded_file(path, NULL);
}
