/*
 * fuzz_seal - a value read from the fleet's shared store: the sealed text
 * (po_seal_parse, then po_unseal under a fixed key: a mutated value fails
 * authentication, but every parser path runs), what it opens to (the
 * token entry, po_cache_entry_decode, or the budget record,
 * po_store_usage_decode, as store.c reads them), and a key file's bytes
 * (po_seal_key_parse).  Sealing the input and opening it again is a
 * round trip.
 *
 * Input: one byte (bit 0: open as the budget record, else as the token
 * entry; bit 1: open under the other profile's name, whose associated data
 * differs), then the value.
 *
 * Properties: a value opens only with the prefix, our key id and the
 * store key name and profile it was sealed for, to a NUL-terminated text
 * of ciphertext length; seal then unseal gives the input back, and never
 * opens under another name; a decoded budget record has a YYYY-MM month
 * (po_is_month), a
 * count within 0..10^9 and a printable host, and encodes and decodes to
 * itself; messages hold no control character and never the value.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include "cache.h"
#include "config.h"
#include "seal.h"
#include "secret.h"
#include "store.h"
#include "util.h"

/* The key of the seeds (tests/fuzz/make-seeds): bytes 1..32, and its id,
 * the first 4 bytes of SHA-256("pam-oauth key id v1\0" key), as
 * po_seal_key_load computes it. */
static po_seal_key key;
static po_profile prof;
static char *k_token, *k_budget;

static const po_log fuzz_log = {fuzz_log_line, NULL, 1};

/* The wall time entries are read at (their times are judged against it). */
#define NOW 1700000100LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const unsigned char id[PO_SEAL_ID_LEN] = {0xa5, 0x92, 0xa0, 0x91};
    size_t i;

    (void)argc;
    (void)argv;
    for (i = 0; i < PO_SEAL_KEY_LEN; i++)
        key.key[i] = (unsigned char)(i + 1);
    memcpy(key.id, id, sizeof(id));
    if (po_profile_init(&prof, "fuzz", NULL) != PO_OK ||
        po_profile_set(&prof, "token_url", "https://auth.example.test/token",
                       "fuzz", NULL) != PO_OK ||
        po_profile_set(&prof, "client_id", "cid", "fuzz", NULL) != PO_OK ||
        po_store_key(&prof, "token", &k_token, NULL) != PO_OK ||
        po_store_key(&prof, "budget", &k_budget, NULL) != PO_OK)
        abort();
    return 0;
}

static void usage_record(const char *text, size_t n)
{
    po_store_usage u, again;
    po_err err;
    po_buf b;
    po_rc rc;

    po_err_clear(&err);
    rc = po_store_usage_decode(text, n, &u, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc != PO_OK) {
        FUZZ_CHECK(u.month[0] == '\0' && u.count == 0 && u.host[0] == '\0',
                   "a failure left a record");
        return;
    }
    FUZZ_CHECK(po_is_month(u.month, strlen(u.month)), "budget month \"%s\"",
               u.month);
    FUZZ_CHECK(u.count >= 0 && u.count <= 1000000000L, "count %ld", u.count);
    FUZZ_CHECK(memchr(u.host, '\0', sizeof(u.host)) != NULL &&
                   fuzz_no_controls(u.host),
               "host not printable");
    po_buf_init(&b, 4096, 0);
    FUZZ_CHECK(po_store_usage_encode(&u, &b) == PO_OK, "encode");
    rc = po_store_usage_decode(b.data, b.len, &again, &err);
    FUZZ_CHECK(rc == PO_OK, "the encoded record does not decode: %s", err.msg);
    FUZZ_CHECK(strcmp(u.month, again.month) == 0 && u.count == again.count &&
                   strcmp(u.host, again.host) == 0 && u.at == again.at,
               "the record changed in a round trip");
    po_buf_free(&b);
}

static void token_entry(const char *text, size_t n)
{
    po_cache_entry e;
    po_err err;
    po_rc rc;

    po_err_clear(&err);
    rc = po_cache_entry_decode(text, n, &prof, "shared cache key", NOW,
                               &fuzz_log, &e, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK)
        po_cache_entry_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned flags = fuzz_byte(&in);
    const char *name = (flags & 1) ? k_budget : k_token;
    const char *profile = (flags & 2) ? "other" : prof.name;
    char *plain = NULL, *value, *back = NULL;
    size_t n, plain_len = 0, back_len = 0;
    po_seal_key k2;
    po_sealed s;
    po_err err;
    po_buf b;
    po_rc rc;

    value = fuzz_rest(&in, &n);

    /* the parts */
    po_err_clear(&err);
    rc = po_seal_parse(value, n, &s, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        FUZZ_CHECK(
            n >= sizeof(PO_SEAL_PREFIX) - 1 &&
                memcmp(value, PO_SEAL_PREFIX, sizeof(PO_SEAL_PREFIX) - 1) == 0,
            "parsed without the prefix");
        FUZZ_CHECK(s.blob_len == PO_SEAL_ID_LEN + PO_SEAL_NONCE_LEN +
                                     s.ciphertext_len + PO_SEAL_TAG_LEN &&
                       s.tag + PO_SEAL_TAG_LEN == s.blob + s.blob_len,
                   "parts do not tile the blob");
        po_sealed_free(&s);
    } else {
        FUZZ_CHECK(s.blob == NULL, "a failure left the blob");
    }

    /* opened, as store.c's read_sealed does, then decoded */
    po_err_clear(&err);
    rc = po_unseal(&key, name, profile, value, n, &plain, &plain_len, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        FUZZ_CHECK(plain != NULL && plain[plain_len] == '\0', "plain text");
        if (flags & 1)
            usage_record(plain, plain_len);
        else
            token_entry(plain, plain_len);
        po_cleanse(plain, plain_len);
        free(plain);
    } else {
        FUZZ_CHECK(plain == NULL && plain_len == 0, "a failure left text");
        FUZZ_CHECK(rc == PO_MALFORMED_RESPONSE || rc == PO_NOMEM ||
                       rc == PO_CONFIG,
                   "unseal: %s", po_rc_name(rc));
        /* the payload after the prefix is the data */
        FUZZ_CHECK(n < sizeof(PO_SEAL_PREFIX) - 1 + 16 ||
                       memcmp(value, PO_SEAL_PREFIX,
                              sizeof(PO_SEAL_PREFIX) - 1) != 0 ||
                       memmem(err.msg, strlen(err.msg),
                              value + sizeof(PO_SEAL_PREFIX) - 1,
                              n - (sizeof(PO_SEAL_PREFIX) - 1)) == NULL,
                   "the message holds the value");
    }

    /* the same bytes as a record and an entry in the clear (a corrupt
     * store value is ignored, never trusted) and as a key file */
    usage_record(value, n);
    token_entry(value, n);
    po_err_clear(&err);
    if (po_seal_key_parse("/etc/fuzz.key", (const unsigned char *)value, n, &k2,
                          &err) == PO_OK)
        po_seal_key_clear(&k2);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);

    /* seal, then open: the round trip, and not under another profile */
    po_buf_init(&b, PO_SEAL_VALUE_MAX, 0);
    po_err_clear(&err);
    rc = po_seal(&key, name, prof.name, value, n, &b, &err);
    if (rc == PO_OK) {
        rc = po_unseal(&key, name, prof.name, b.data, b.len, &back, &back_len,
                       &err);
        FUZZ_CHECK(rc == PO_OK, "a sealed value does not open: %s", err.msg);
        FUZZ_CHECK(back_len == n && memcmp(back, value, n) == 0,
                   "the round trip changed the value");
        po_cleanse(back, back_len);
        free(back);
        back = NULL;
        FUZZ_CHECK(po_unseal(&key, name, "other", b.data, b.len, &back,
                             &back_len, &err) == PO_MALFORMED_RESPONSE &&
                       back == NULL,
                   "opened under another profile");
    } else {
        FUZZ_CHECK(rc == PO_TOO_LARGE || rc == PO_NOMEM, "seal: %s",
                   po_rc_name(rc));
    }
    po_buf_free(&b);
    free(value);
    return 0;
}
