/*
 * The multipart/form-data builder: layout, escaping, the boundary.
 */
#include "tap.h"

#include <avatarcore/multipart.h>

#include <stdlib.h>
#include <string.h>

/* Tests only (src/http/http_internal.h). */
int avc__multipart_try_boundary(avc_multipart_t *mp, const char *boundary);

static const char *
boundary_of(const avc_multipart_t *mp)
{
    const char *ct = avc_multipart_content_type(mp);
    const char *prefix = "multipart/form-data; boundary=";

    if (ct == NULL || strncmp(ct, prefix, strlen(prefix)) != 0) {
        return NULL;
    }
    return ct + strlen(prefix);
}

static void
test_layout(void)
{
    avc_multipart_t *mp;
    const char *b;
    char *body, want[1024];
    size_t len;
    static const unsigned char bin[] = { 0, 1, 2, '\r', '\n', 0xff };

    mp = avc_multipart_new();
    TAP_OK(mp != NULL, "new");
    TAP_IS(avc_multipart_add_field(mp, "model", "whisper-1", 9), AVC_OK,
           "add a text field");
    TAP_IS(avc_multipart_add_file(mp, "file", "a.wav", "audio/wav", bin,
                                  sizeof(bin)), AVC_OK, "add a file part");
    TAP_IS(avc_multipart_add_file(mp, "raw", "", NULL, "", 0), AVC_OK,
           "empty file, default type");
    TAP_OK(avc_multipart_content_type(mp) == NULL,
           "no content type before finish");
    body = avc_multipart_finish(mp, &len);
    TAP_OK(body != NULL, "finish");
    b = boundary_of(mp);
    TAP_OK(b != NULL && strlen(b) >= 30 && strlen(b) <= 70,
           "Content-Type carries a boundary of sane length");
    snprintf(want, sizeof(want),
             "--%s\r\n"
             "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
             "whisper-1\r\n"
             "--%s\r\n"
             "Content-Disposition: form-data; name=\"file\"; "
             "filename=\"a.wav\"\r\n"
             "Content-Type: audio/wav\r\n\r\n"
             "%%s\r\n"
             "--%s\r\n"
             "Content-Disposition: form-data; name=\"raw\"; "
             "filename=\"\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n"
             "\r\n"
             "--%s--\r\n", b, b, b, b);
    {
        /* splice the binary content in place of %s */
        char full[1200];
        char *at = strstr(want, "%s");
        size_t pre = (size_t) (at - want);

        memcpy(full, want, pre);
        memcpy(full + pre, bin, sizeof(bin));
        strcpy(full + pre + sizeof(bin), at + 2);
        TAP_IS(len, strlen(want) - 2 + sizeof(bin), "body length");
        TAP_OK(len == strlen(want) - 2 + sizeof(bin)
               && memcmp(body, full, len) == 0, "body layout, byte exact");
    }
    TAP_IS(avc_multipart_add_field(mp, "late", "x", 1), AVC_ESTATE,
           "no adding after finish");
    TAP_OK(avc_multipart_finish(mp, &len) == NULL, "no second finish");
    free(body);
    avc_multipart_free(mp);
}

static void
test_escaping(void)
{
    avc_multipart_t *mp = avc_multipart_new();
    char *body;
    size_t len;

    avc_multipart_add_file(mp, "na\"me\r\nX-Evil: 1", "f\"i\nle\r.txt",
                           "text/plain", "x", 1);
    body = avc_multipart_finish(mp, &len);
    TAP_OK(body && strstr(body, "name=\"na%22me%0D%0AX-Evil: 1\"; "
                                "filename=\"f%22i%0Ale%0D.txt\"\r\n"),
           "quotes, CR and LF escaped in name and filename");
    TAP_OK(body && strstr(body, "\r\nX-Evil") == NULL,
           "no header injected");
    free(body);
    avc_multipart_free(mp);

    mp = avc_multipart_new();
    TAP_IS(avc_multipart_add_file(mp, "f", "a", "text/plain\r\nX: y", "", 0),
           AVC_EINVAL, "CR/LF in a content type refused");
    TAP_IS(avc_multipart_add_field(mp, "", "v", 1), AVC_EINVAL,
           "empty name refused");
    TAP_IS(avc_multipart_add_file(mp, "f", NULL, NULL, "", 0), AVC_EINVAL,
           "NULL filename refused");
    avc_multipart_free(mp);
}

static void
test_boundary(void)
{
    avc_multipart_t *mp, *mp2;
    const char *content = "text with --avc-FIXEDFIXED inside";
    char *body, *body2;
    size_t len, len2;
    char b1[80];

    mp = avc_multipart_new();
    avc__multipart_try_boundary(mp, "avc-FIXEDFIXED");
    avc_multipart_add_field(mp, "t", content, strlen(content));
    body = avc_multipart_finish(mp, &len);
    TAP_OK(strcmp(boundary_of(mp), "avc-FIXEDFIXED") != 0,
           "a boundary found in the content is not used");
    {
        const char *b = boundary_of(mp);
        size_t bl = strlen(b);

        TAP_OK(len > 2 * bl + 10 && memcmp(body, "--", 2) == 0
               && memcmp(body + 2, b, bl) == 0
               && memcmp(body + len - bl - 8, "\r\n--", 4) == 0
               && memcmp(body + len - bl - 4, b, bl) == 0,
               "the chosen boundary delimits the parts");
    }
    free(body);
    avc_multipart_free(mp);

    mp = avc_multipart_new();
    avc__multipart_try_boundary(mp, "avc-UNUSED");
    avc_multipart_add_field(mp, "t", content, strlen(content));
    body = avc_multipart_finish(mp, &len);
    TAP_STR(boundary_of(mp), "avc-UNUSED", "a free boundary is kept");
    free(body);
    avc_multipart_free(mp);

    mp = avc_multipart_new();
    mp2 = avc_multipart_new();
    body = avc_multipart_finish(mp, &len);
    body2 = avc_multipart_finish(mp2, &len2);
    snprintf(b1, sizeof(b1), "%s", boundary_of(mp));
    TAP_OK(strcmp(b1, boundary_of(mp2)) != 0, "boundaries are random");
    TAP_OK(len == strlen(b1) + 6 && memcmp(body + 2 + strlen(b1), "--\r\n",
                                           4) == 0,
           "an empty form is just the close delimiter");
    free(body);
    free(body2);
    avc_multipart_free(mp);
    avc_multipart_free(mp2);
    avc_multipart_free(NULL);
    TAP_OK(1, "avc_multipart_free(NULL) is a no-op");
}

int
main(void)
{
    test_layout();
    test_escaping();
    test_boundary();
    return tap_done();
}
