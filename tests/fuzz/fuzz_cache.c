/*
 * fuzz_cache - a token cache file's text (po_cache_entry_decode, what
 * po_cache_read does after reading the file) and the round trip through
 * the encoder (po_cache_entry_encode, what po_cache_write writes).
 *
 * Input: the file's bytes.  The profile is fixed; a file for another
 * token_url or client_id keeps only its budget.
 *
 * Properties: what decodes is one object with nothing but white space
 * after it; a decoded entry encodes; the encoding decodes to the same
 * entry; encoding that again gives the same bytes; a refused text leaves
 * the entry empty with PO_IO and a reason without control characters.
 */
#include "fuzz.h"

#include <syslog.h>

#include "cache.h"
#include "config.h"
#include "oauth.h"
#include "secret.h"
#include "util.h"

static po_profile prof;

static const po_log fuzz_log = {fuzz_log_line, NULL, 1};

/* The wall time entries are read at (their times are judged against it). */
#define NOW 1700000100LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (po_profile_init(&prof, "fuzz", NULL) != PO_OK ||
        po_profile_set(&prof, "token_url", "https://auth.example.test/token",
                       "fuzz", NULL) != PO_OK ||
        po_profile_set(&prof, "client_id", "cid", "fuzz", NULL) != PO_OK)
        abort();
    return 0;
}

static int same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static void check_same(const po_cache_entry *a, const po_cache_entry *b)
{
    FUZZ_CHECK(same(a->token.access_token, b->token.access_token),
               "access_token");
    FUZZ_CHECK(same(a->token.refresh_token, b->token.refresh_token),
               "refresh_token");
    FUZZ_CHECK(same(a->token.id_token, b->token.id_token), "id_token");
    FUZZ_CHECK(same(a->token.token_type, b->token.token_type), "token_type");
    FUZZ_CHECK(same(a->token.scope, b->token.scope), "scope");
    FUZZ_CHECK(same(a->token.extra_json, b->token.extra_json),
               "extra_json \"%s\" became \"%s\"",
               a->token.extra_json ? a->token.extra_json : "(null)",
               b->token.extra_json ? b->token.extra_json : "(null)");
    FUZZ_CHECK(same(a->username, b->username), "username");
    FUZZ_CHECK(a->token.obtained_at == b->token.obtained_at, "obtained_at");
    FUZZ_CHECK(a->token.expires_at == b->token.expires_at, "expires_at");
    FUZZ_CHECK(a->token.has_expires_in == b->token.has_expires_in,
               "has_expires_in");
    FUZZ_CHECK(strcmp(a->budget_month, b->budget_month) == 0, "budget_month");
    FUZZ_CHECK(a->budget_count == b->budget_count, "budget_count");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    po_cache_entry e, e2;
    po_buf b1, b2;
    po_err err;
    po_rc rc;

    po_buf_init(&b1, PO_CACHE_FILE_MAX, 1);
    po_buf_init(&b2, PO_CACHE_FILE_MAX, 1);
    memset(&e2, 0, sizeof(e2));
    po_err_clear(&err);
    rc = po_cache_entry_decode((const char *)data, size, &prof, "fuzz.json",
                               NOW, &fuzz_log, &e, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc != PO_OK) {
        FUZZ_CHECK(rc == PO_IO || rc == PO_NOMEM, "decode: %s", po_rc_name(rc));
        FUZZ_CHECK(e.token.access_token == NULL && e.username == NULL &&
                       e.budget_count == 0,
                   "a refused text left an entry");
        goto out;
    }
    {
        /* one object and nothing but white space after it */
        size_t end = size;
        while (end > 0 && strchr(" \t\r\n", data[end - 1]) != NULL &&
               data[end - 1] != '\0')
            end--;
        FUZZ_CHECK(end > 0 && data[end - 1] == '}',
                   "accepted with something after the object");
    }
    FUZZ_CHECK(e.budget_count >= 0, "budget_count %ld", e.budget_count);
    FUZZ_CHECK(e.budget_month[0] == '\0' ||
                   po_is_month(e.budget_month, strlen(e.budget_month)),
               "budget_month \"%s\"", e.budget_month);
    rc = po_cache_entry_encode(&prof, &e, &b1);
    if (rc == PO_TOO_LARGE)
        goto out; /* an entry near the file cap, with escapes: too big */
    FUZZ_CHECK(rc == PO_OK, "encode: %s", po_rc_name(rc));
    rc = po_cache_entry_decode(b1.data, b1.len, &prof, "fuzz.json", NOW,
                               &fuzz_log, &e2, &err);
    FUZZ_CHECK(rc == PO_OK, "our own encoding does not decode: %s", err.msg);
    check_same(&e, &e2);
    FUZZ_CHECK(po_cache_entry_encode(&prof, &e2, &b2) == PO_OK, "encode again");
    FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0,
               "encode(decode(encode(e))) differs from encode(e)");
out:
    po_cache_entry_free(&e);
    po_cache_entry_free(&e2);
    po_buf_free(&b1);
    po_buf_free(&b2);
    return 0;
}
