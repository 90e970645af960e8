/* offline.c - verifiers of the last good password (offline.h). */
#include "offline.h"

#include <argon2.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "b64.h"
#include "files.h"
#include "jsonsec.h"
#include "oauth.h"
#include "secret.h"
#include "util.h"

#define FILE_VERSION 1
#define DIR_FORBID ((mode_t)077) /* group and others get nothing */
#define WHAT_DIR "offline verifier directory"
/* Bounds on what a stored verifier may ask for, so that a damaged file
 * cannot make a login allocate or compute without limit. */
#define MAX_M_COST (1024u * 1024u) /* KiB: 1 GiB */
#define MAX_T_COST 64u
#define MAX_LANES 16u
#define MAX_SALT 64u
#define MAX_HASH 64u
#define MAX_ROLES 1024
#define MAX_FAILURES 1000000L

static const char *const roles_sources[] = {"response", "token"};

/* ------------------------------------------------------------------ */
/* small pieces                                                        */

void po_offline_grants_free(po_offline_grants *g)
{
    if (g == NULL)
        return;
    free(g->scope);
    free(g->roles_claim);
    po_strlist_free(&g->roles);
    memset(g, 0, sizeof(*g));
}

void po_offline_result_free(po_offline_result *r)
{
    if (r == NULL)
        return;
    po_offline_grants_free(&r->grants);
    memset(r, 0, sizeof(*r));
}

const char *po_offline_verdict_name(po_offline_verdict v)
{
    switch (v) {
    case PO_OFFLINE_NONE:
        return "none";
    case PO_OFFLINE_MATCH:
        return "match";
    case PO_OFFLINE_WRONG:
        return "wrong";
    case PO_OFFLINE_LOCKED:
        return "locked";
    case PO_OFFLINE_EXPIRED:
        return "expired";
    case PO_OFFLINE_CLOCK:
        return "clock";
    }
    return "unknown";
}

static int keep_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
           c == '+' || c == '-';
}

po_rc po_offline_file_name(const char *user, char **out, po_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    po_rc rc = PO_OK;
    const unsigned char *s;
    po_buf b;

    *out = NULL;
    po_buf_init(&b, PO_OFFLINE_NAME_MAX, 0);
    if (user == NULL || user[0] == '\0') {
        rc = po_fail(err, PO_USAGE, "offline verifier: empty user name");
        goto out;
    }
    for (s = (const unsigned char *)user; *s != '\0' && rc == PO_OK; s++) {
        if (keep_byte(*s) && !(*s == '.' && s == (const unsigned char *)user)) {
            rc = po_buf_append(&b, s, 1);
        } else {
            char e[3] = {'%', hex[*s >> 4], hex[*s & 15]};
            rc = po_buf_append(&b, e, 3);
        }
    }
    if (rc == PO_TOO_LARGE) {
        rc = po_fail(err, PO_TOO_LARGE,
                     "offline verifier: the user name is too long for a "
                     "file name (over %d bytes once escaped)",
                     PO_OFFLINE_NAME_MAX);
        goto out;
    }
    if (rc != PO_OK || (rc = po_buf_detach(&b, out)) != PO_OK) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
out:
    po_buf_free(&b);
    return rc;
}

/* The libargon2 result code as a po_rc with a message. */
static po_rc argon2_fail(int a, const char *doing, po_err *err)
{
    return po_fail(err, a == ARGON2_MEMORY_ALLOCATION_ERROR ? PO_NOMEM : PO_IO,
                   "offline verifier: %s: Argon2id: %s", doing,
                   argon2_error_message(a));
}

/* A new verifier of password: "$argon2id$v=19$m=...", malloc'd. */
static po_rc verifier_new(const char *password, char **out, po_err *err)
{
    unsigned char salt[PO_OFFLINE_SALT_LEN];
    size_t n = argon2_encodedlen(PO_OFFLINE_T_COST, PO_OFFLINE_M_COST,
                                 PO_OFFLINE_LANES, PO_OFFLINE_SALT_LEN,
                                 PO_OFFLINE_HASH_LEN, Argon2_id);
    po_rc rc = PO_OK;
    char *enc = NULL;
    ssize_t got;
    int a;

    *out = NULL;
    do
        got = getrandom(salt, sizeof(salt), 0);
    while (got == -1 && errno == EINTR);
    if (got != (ssize_t)sizeof(salt)) {
        rc = po_fail(err, PO_IO,
                     "offline verifier: cannot get random bytes for the "
                     "salt: %s",
                     got == -1 ? strerror(errno) : "short read");
        goto out;
    }
    if ((enc = calloc(1, n + 1)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    a = argon2id_hash_encoded(
        PO_OFFLINE_T_COST, PO_OFFLINE_M_COST, PO_OFFLINE_LANES, password,
        strlen(password), salt, sizeof(salt), PO_OFFLINE_HASH_LEN, enc, n + 1);
    if (a != ARGON2_OK) {
        rc = argon2_fail(a, "cannot make the verifier", err);
        goto out;
    }
    *out = enc;
    enc = NULL;
out:
    po_cleanse(salt, sizeof(salt));
    if (enc != NULL) {
        po_cleanse(enc, n + 1);
        free(enc);
    }
    return rc;
}

po_rc po_offline_decoy(po_err *err)
{
    char *enc = NULL, pass[33];
    unsigned char rnd[16];
    ssize_t got;
    size_t i;
    po_rc rc;

    do
        got = getrandom(rnd, sizeof(rnd), 0);
    while (got == -1 && errno == EINTR);
    if (got != (ssize_t)sizeof(rnd))
        return po_fail(err, PO_IO, "offline check: cannot get random bytes: %s",
                       got == -1 ? strerror(errno) : "short read");
    for (i = 0; i < sizeof(rnd); i++)
        (void)snprintf(pass + 2 * i, 3, "%02x", rnd[i]);
    rc = verifier_new(pass, &enc, err);
    po_cleanse(rnd, sizeof(rnd));
    po_cleanse(pass, sizeof(pass));
    if (enc != NULL) {
        po_cleanse(enc, strlen(enc));
        free(enc);
    }
    return rc;
}

/* The parts of an encoded verifier. */
typedef struct parsed {
    uint32_t m, t, p;
    unsigned char salt[MAX_SALT], hash[MAX_HASH];
    size_t saltlen, hashlen;
} parsed;

/* A decimal uint32 at *s, advancing it. */
static int read_u32(const char **s, uint32_t *out)
{
    uint64_t v = 0;
    const char *q = *s;

    if (*q < '0' || *q > '9' || (*q == '0' && q[1] >= '0' && q[1] <= '9'))
        return 0;
    for (; *q >= '0' && *q <= '9'; q++) {
        v = v * 10 + (uint64_t)(*q - '0');
        if (v > UINT32_MAX)
            return 0;
    }
    *s = q;
    *out = (uint32_t)v;
    return 1;
}

/* Unpadded standard base64 (the PHC string format) of n characters into
 * out (at most max bytes). */
static int read_b64(const char *s, size_t n, unsigned char *out, size_t max,
                    size_t *outlen)
{
    unsigned char *dec = NULL;
    char padded[(MAX_HASH + 2) / 3 * 4 + 4];
    size_t pad = (4 - n % 4) % 4, len = 0;
    int ok = 0;

    if (n == 0 || n + pad >= sizeof(padded) || pad == 3)
        return 0;
    memcpy(padded, s, n);
    memset(padded + n, '=', pad);
    if (po_b64_decode(padded, n + pad, "verifier", &dec, &len, NULL) == PO_OK &&
        len <= max) {
        memcpy(out, dec, len);
        *outlen = len;
        ok = 1;
    }
    po_cleanse(padded, sizeof(padded));
    if (dec != NULL) {
        po_cleanse(dec, len);
        free(dec);
    }
    return ok;
}

/* Parse "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" strictly and within the
 * bounds above. */
static po_rc verifier_parse(const char *enc, parsed *out, po_err *err)
{
    static const char head[] = "$argon2id$v=19$m=";
    const char *s = enc, *salt, *hash;

    memset(out, 0, sizeof(*out));
    if (strncmp(s, head, sizeof(head) - 1) != 0)
        return po_fail(err, PO_IO,
                       "the verifier is not $argon2id$v=19$ (Argon2id, "
                       "version 1.3)");
    s += sizeof(head) - 1;
    if (!read_u32(&s, &out->m) || strncmp(s, ",t=", 3) != 0 ||
        (s += 3, !read_u32(&s, &out->t)) || strncmp(s, ",p=", 3) != 0 ||
        (s += 3, !read_u32(&s, &out->p)) || *s != '$')
        return po_fail(err, PO_IO, "the verifier's parameters are malformed");
    if (out->p < 1 || out->p > MAX_LANES || out->t < 1 || out->t > MAX_T_COST ||
        out->m < 8 * out->p || out->m > MAX_M_COST)
        return po_fail(err, PO_IO,
                       "the verifier's parameters m=%" PRIu32 ",t=%" PRIu32
                       ",p=%" PRIu32 " are out of bounds (m up to %u KiB, t "
                       "up to %u, p up to %u)",
                       out->m, out->t, out->p, MAX_M_COST, MAX_T_COST,
                       MAX_LANES);
    salt = ++s;
    if ((hash = strchr(salt, '$')) == NULL)
        return po_fail(err, PO_IO, "the verifier has no hash");
    hash++;
    if (!read_b64(salt, (size_t)(hash - 1 - salt), out->salt, MAX_SALT,
                  &out->saltlen) ||
        out->saltlen < ARGON2_MIN_SALT_LENGTH ||
        !read_b64(hash, strlen(hash), out->hash, MAX_HASH, &out->hashlen) ||
        out->hashlen < 16)
        return po_fail(err, PO_IO,
                       "the verifier's salt or hash is not base64 of a "
                       "usable length");
    return PO_OK;
}

/* Whether password matches the encoded verifier (*match), computed with
 * libargon2 on one thread and compared in constant time. */
static po_rc verifier_check(const char *enc, const char *password, int *match,
                            po_err *err)
{
    unsigned char got[MAX_HASH];
    argon2_context ctx;
    po_rc rc = PO_OK;
    parsed v;
    int a;

    *match = 0;
    if ((rc = verifier_parse(enc, &v, err)) != PO_OK)
        goto out;
    memset(&ctx, 0, sizeof(ctx));
    ctx.out = got;
    ctx.outlen = (uint32_t)v.hashlen;
    ctx.pwd = (uint8_t *)(uintptr_t)password;
    ctx.pwdlen = (uint32_t)strlen(password);
    ctx.salt = v.salt;
    ctx.saltlen = (uint32_t)v.saltlen;
    ctx.t_cost = v.t;
    ctx.m_cost = v.m;
    ctx.lanes = v.p;
    ctx.threads = 1; /* never start threads inside the PAM host */
    ctx.version = ARGON2_VERSION_13;
    ctx.flags = ARGON2_DEFAULT_FLAGS;
    if ((a = argon2id_ctx(&ctx)) != ARGON2_OK) {
        rc = argon2_fail(a, "cannot check the password", err);
        goto out;
    }
    *match = po_mem_equal(got, v.hash, v.hashlen);
out:
    po_cleanse(got, sizeof(got));
    po_cleanse(&v, sizeof(v));
    po_cleanse(&ctx, sizeof(ctx));
    return rc;
}

/* ------------------------------------------------------------------ */
/* the file                                                            */

/* What a verifier file holds. */
typedef struct entry {
    char *profile, *user, *token_url, *client_id;
    char *verifier; /* cleansed when freed */
    int64_t online_at;
    long failures;
    po_offline_grants grants;
} entry;

static void entry_free(entry *e)
{
    free(e->profile);
    free(e->user);
    free(e->token_url);
    free(e->client_id);
    po_secret_free(e->verifier);
    po_offline_grants_free(&e->grants);
    memset(e, 0, sizeof(*e));
}

/* The file's JSON text into the secret buffer b. */
static po_rc encode_entry(const entry *e, po_buf *b)
{
    const po_offline_grants *g = &e->grants;
    po_rc rc;
    size_t i;

    if ((rc = po_buf_printf(b, "{\"version\":%d", FILE_VERSION)) ||
        (rc = po_json_member(b, "profile", e->profile)) ||
        (rc = po_json_member(b, "user", e->user)) ||
        (rc = po_json_member(b, "token_url", e->token_url)) ||
        (rc = po_json_member(b, "client_id", e->client_id)) ||
        (rc = po_json_member(b, "verifier", e->verifier)) ||
        (rc = po_buf_printf(b, ",\"online_at\":%" PRId64 ",\"failures\":%ld",
                            e->online_at, e->failures)) ||
        (rc = po_json_member(b, "scope", g->scope)) ||
        (rc = po_json_member(
             b, "roles_source",
             roles_sources[g->roles_source == PO_ROLES_TOKEN])) ||
        (rc = po_json_member(b, "roles_claim", g->roles_claim)) ||
        (rc = po_buf_puts(b, ",\"roles\":")))
        return rc;
    if (!g->has_roles)
        return po_buf_puts(b, "null}\n");
    if ((rc = po_buf_puts(b, "[")) != PO_OK)
        return rc;
    for (i = 0; i < g->roles.n; i++)
        if ((i > 0 && (rc = po_buf_puts(b, ",")) != PO_OK) ||
            (rc = po_json_quote(b, g->roles.v[i])) != PO_OK)
            return rc;
    return po_buf_puts(b, "]}\n");
}

/* Member key of o as a string (NULL allowed when nullable). */
static po_rc get_str(json_object *o, const char *key, int nullable, char **dst,
                     po_err *err)
{
    json_object *v = NULL;

    *dst = NULL;
    if (!json_object_object_get_ex(o, key, &v) && !nullable)
        return po_fail(err, PO_IO, "\"%s\" is missing", key);
    if (v == NULL) {
        if (!nullable)
            return po_fail(err, PO_IO, "\"%s\" is null", key);
        return PO_OK;
    }
    if (!json_object_is_type(v, json_type_string))
        return po_fail(err, PO_IO, "\"%s\" is not a string", key);
    if ((*dst = po_strndup(json_object_get_string(v),
                           (size_t)json_object_get_string_len(v))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

static po_rc get_int(json_object *o, const char *key, int64_t lo, int64_t hi,
                     int64_t *dst, po_err *err)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL ||
        !json_object_is_type(v, json_type_int))
        return po_fail(err, PO_IO, "\"%s\" is missing or not an integer", key);
    *dst = json_object_get_int64(v);
    if (*dst < lo || *dst > hi)
        return po_fail(err, PO_IO, "\"%s\" is out of range", key);
    return PO_OK;
}

/* roles: null, or an array of at most MAX_ROLES strings. */
static po_rc get_roles(json_object *o, po_offline_grants *g, po_err *err)
{
    json_object *v = NULL, *r;
    char **vec = NULL;
    size_t i, n;

    if (json_object_object_get_ex(o, "roles", &v) && v == NULL)
        return PO_OK;
    if (v == NULL || !json_object_is_type(v, json_type_array))
        return po_fail(err, PO_IO, "\"roles\" is not an array or null");
    n = json_object_array_length(v);
    if (n > MAX_ROLES)
        return po_fail(err, PO_IO, "\"roles\" has more than %d members",
                       MAX_ROLES);
    if (n > 0 && (vec = calloc(n, sizeof(*vec))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    g->roles.v = n > 0 ? vec : NULL;
    for (i = 0; i < n; i++) {
        r = json_object_array_get_idx(v, i);
        if (!json_object_is_type(r, json_type_string))
            return po_fail(err, PO_IO, "\"roles\" holds a non-string");
        if ((g->roles.v[i] =
                 po_strndup(json_object_get_string(r),
                            (size_t)json_object_get_string_len(r))) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
        g->roles.n = i + 1;
    }
    g->has_roles = 1;
    return PO_OK;
}

static po_rc decode_object(json_object *o, entry *e, po_err *err)
{
    po_rc rc;
    int64_t n;
    char *src = NULL;

    if (!json_object_is_type(o, json_type_object))
        return po_fail(err, PO_IO, "not a JSON object");
    if ((rc = get_int(o, "version", FILE_VERSION, FILE_VERSION, &n, err)) !=
            PO_OK ||
        (rc = get_str(o, "profile", 0, &e->profile, err)) != PO_OK ||
        (rc = get_str(o, "user", 0, &e->user, err)) != PO_OK ||
        (rc = get_str(o, "token_url", 1, &e->token_url, err)) != PO_OK ||
        (rc = get_str(o, "client_id", 1, &e->client_id, err)) != PO_OK ||
        (rc = get_str(o, "verifier", 0, &e->verifier, err)) != PO_OK ||
        (rc = get_int(o, "online_at", 0, INT64_MAX / 2, &e->online_at, err)) !=
            PO_OK ||
        (rc = get_int(o, "failures", 0, MAX_FAILURES, &n, err)) != PO_OK)
        goto out;
    e->failures = (long)n;
    if ((rc = get_str(o, "scope", 1, &e->grants.scope, err)) != PO_OK ||
        (rc = get_str(o, "roles_claim", 1, &e->grants.roles_claim, err)) !=
            PO_OK ||
        (rc = get_str(o, "roles_source", 0, &src, err)) != PO_OK)
        goto out;
    if (strcmp(src, roles_sources[0]) == 0) {
        e->grants.roles_source = PO_ROLES_RESPONSE;
    } else if (strcmp(src, roles_sources[1]) == 0) {
        e->grants.roles_source = PO_ROLES_TOKEN;
    } else {
        rc = po_fail(err, PO_IO,
                     "\"roles_source\" is neither response nor "
                     "token");
        goto out;
    }
    rc = get_roles(o, &e->grants, err);
out:
    free(src);
    return rc;
}

/* Parse the file's text into e; PO_IO with the reason when it is not a
 * verifier file. */
static po_rc decode_entry(const char *text, size_t len, entry *e, po_err *err)
{
    json_object *o = NULL;
    po_err why;
    po_rc rc;

    memset(e, 0, sizeof(*e));
    if (len > PO_OFFLINE_FILE_MAX) {
        rc = po_fail(err, PO_IO, "larger than %d bytes", PO_OFFLINE_FILE_MAX);
        goto out;
    }
    po_err_clear(&why);
    rc = po_json_parse_secret(text, len, 8, &o, &why);
    if (rc != PO_OK) {
        rc = po_fail(err, rc == PO_NOMEM ? PO_NOMEM : PO_IO, "not JSON: %s",
                     why.msg);
        goto out;
    }
    rc = decode_object(o, e, err);
out:
    po_json_put_secret(o);
    if (rc != PO_OK)
        entry_free(e);
    return rc;
}

/* Do a and b (either may be NULL) hold the same string? */
static int same(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* ------------------------------------------------------------------ */
/* the directory and one user's files                                  */

/* Where one user's verifier of one profile lives, opened. */
typedef struct place {
    int root, dir;  /* offline_dir and offline_dir/PROFILE, or -1 */
    char *dir_path; /* offline_dir/PROFILE                        */
    char *name;     /* NAME                                       */
    char *lock;     /* .NAME.lock                                 */
    char *tmp;      /* .NAME.                                     */
    char *path;     /* offline_dir/PROFILE/NAME, for messages     */
    po_flock lk;
} place;

static void place_close(place *pl)
{
    po_file_unlock(&pl->lk);
    if (pl->dir != -1)
        close(pl->dir);
    if (pl->root != -1)
        close(pl->root);
    free(pl->dir_path);
    free(pl->name);
    free(pl->lock);
    free(pl->tmp);
    free(pl->path);
    pl->root = pl->dir = -1;
    pl->dir_path = pl->name = pl->lock = pl->tmp = pl->path = NULL;
}

/* Name the files and open the directories (made when create is set);
 * PO_NOT_FOUND when one is missing and create is 0. */
static po_rc place_open(const po_profile *p, const char *user, int create,
                        place *pl, po_err *err)
{
    const char *root = p->offline_dir != NULL && p->offline_dir[0] != '\0'
                           ? p->offline_dir
                           : PO_OFFLINE_DIR_DEFAULT;
    uid_t uid = geteuid();
    po_rc rc;

    memset(pl, 0, sizeof(*pl));
    pl->root = pl->dir = pl->lk.fd = -1;
    if (p->name == NULL || p->name[0] == '\0' || p->name[0] == '.' ||
        strchr(p->name, '/') != NULL)
        return po_fail(err, PO_USAGE, "offline verifier: bad profile name");
    if ((rc = po_offline_file_name(user, &pl->name, err)) != PO_OK)
        return rc;
    if ((pl->dir_path = po_concat3(root, "/", p->name)) == NULL ||
        (pl->lock = po_concat3(".", pl->name, ".lock")) == NULL ||
        (pl->tmp = po_concat3(".", pl->name, ".")) == NULL ||
        (pl->path = po_concat3(pl->dir_path, "/", pl->name)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    if ((rc = po_dir_open(root, create, uid, DIR_FORBID, WHAT_DIR, &pl->root,
                          err)) != PO_OK)
        return rc;
    return po_dir_open_at(pl->root, root, p->name, create, uid, DIR_FORBID,
                          WHAT_DIR, &pl->dir, err);
}

/* Take the user's lock, then clear what a killed writer left. */
static po_rc place_lock(const po_profile *p, place *pl, po_err *err)
{
    po_rc rc = po_file_lock_at(pl->dir, pl->dir_path, pl->lock,
                               p->lock_timeout_ms, &pl->lk, err);

    if (rc == PO_OK)
        po_file_remove_temps_at(pl->dir, pl->tmp);
    return rc;
}

/* Open the place of an existing verifier and take its lock: PO_NOT_FOUND
 * (and no lock, and no lock file made) when there is no directory or no
 * verifier file. */
static po_rc place_lock_existing(const po_profile *p, const char *user,
                                 place *pl, po_err *err)
{
    struct stat st;
    po_rc rc;

    if ((rc = place_open(p, user, 0, pl, err)) != PO_OK)
        return rc;
    if (fstatat(pl->dir, pl->name, &st, AT_SYMLINK_NOFOLLOW) == -1 &&
        errno == ENOENT)
        return PO_NOT_FOUND;
    return place_lock(p, pl, err);
}

static po_rc write_entry(place *pl, const entry *e, po_err *err)
{
    po_rc rc;
    po_buf b;

    po_buf_init(&b, PO_OFFLINE_FILE_MAX, 1);
    if ((rc = encode_entry(e, &b)) != PO_OK) {
        rc = po_fail(err, rc,
                     "cannot write %s: larger than %d bytes or out of memory",
                     pl->path, PO_OFFLINE_FILE_MAX);
        goto out;
    }
    rc = po_file_replace_at(pl->dir, pl->dir_path, pl->name, pl->tmp, b.data,
                            b.len, err);
out:
    po_buf_free(&b);
    return rc;
}

static po_rc copy_grants(po_offline_grants *dst, const po_offline_grants *src,
                         po_err *err)
{
    size_t i;

    memset(dst, 0, sizeof(*dst));
    if (src == NULL)
        return PO_OK;
    dst->roles_source = src->roles_source;
    dst->has_roles = src->has_roles;
    if ((src->scope != NULL && (dst->scope = strdup(src->scope)) == NULL) ||
        (src->roles_claim != NULL &&
         (dst->roles_claim = strdup(src->roles_claim)) == NULL))
        goto nomem;
    if (src->roles.n > 0) {
        if ((dst->roles.v = calloc(src->roles.n, sizeof(char *))) == NULL)
            goto nomem;
        for (i = 0; i < src->roles.n; i++) {
            if ((dst->roles.v[i] = strdup(src->roles.v[i])) == NULL)
                goto nomem;
            dst->roles.n = i + 1;
        }
    }
    return PO_OK;
nomem:
    po_offline_grants_free(dst);
    return po_fail(err, PO_NOMEM, "out of memory");
}

/* ------------------------------------------------------------------ */
/* the operations                                                      */

po_rc po_offline_store(const po_profile *p, const char *user,
                       const char *password, const po_offline_grants *g,
                       int64_t now, po_err *err)
{
    po_rc rc = PO_OK;
    entry e;
    place pl;
    char *name = NULL;

    memset(&e, 0, sizeof(e));
    memset(&pl, 0, sizeof(pl));
    pl.root = pl.dir = pl.lk.fd = -1;
    if (password == NULL || password[0] == '\0') {
        rc = po_fail(err, PO_USAGE, "offline verifier: no password");
        goto out;
    }
    /* The name first: an unusable one costs no Argon2id computation. */
    if ((rc = po_offline_file_name(user, &name, err)) != PO_OK ||
        (rc = verifier_new(password, &e.verifier, err)) != PO_OK ||
        (rc = copy_grants(&e.grants, g, err)) != PO_OK)
        goto out;
    if ((e.profile = po_strdup(p->name)) == NULL ||
        (e.user = po_strdup(user)) == NULL ||
        (p->token_url != NULL &&
         (e.token_url = po_strdup(p->token_url)) == NULL) ||
        (p->client_id != NULL &&
         (e.client_id = po_strdup(p->client_id)) == NULL)) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    e.online_at = now;
    e.failures = 0;
    if ((rc = place_open(p, user, 1, &pl, err)) != PO_OK ||
        (rc = place_lock(p, &pl, err)) != PO_OK)
        goto out;
    rc = write_entry(&pl, &e, err);
out:
    place_close(&pl);
    entry_free(&e);
    free(name);
    return rc;
}

/* Remove an unusable file and say why on log. */
static void drop(place *pl, const po_log *log, int priority, const char *why)
{
    po_err e;

    po_err_clear(&e);
    if (po_file_remove_at(pl->dir, pl->dir_path, pl->name, &e) != PO_OK)
        po_logf(log, LOG_ERR, "offline verifier %s: %s; %s", pl->path, why,
                e.msg);
    else
        po_logf(log, priority, "offline verifier %s removed: %s", pl->path,
                why);
}

po_rc po_offline_check(const po_profile *p, const char *user,
                       const char *password, int64_t now, const po_log *log,
                       po_offline_result *res, po_err *err)
{
    po_rc rc = PO_OK;
    char *text = NULL, why[600];
    size_t len = 0;
    entry e;
    place pl;
    po_err bad;
    int match = 0;
    long max = p->offline_max_failures > 0 ? p->offline_max_failures : 1;

    memset(res, 0, sizeof(*res));
    memset(&e, 0, sizeof(e));
    po_err_clear(&bad);
    rc = place_lock_existing(p, user, &pl, err);
    if (rc == PO_NOT_FOUND) { /* no verifier */
        rc = PO_OK;
        goto out;
    }
    if (rc != PO_OK)
        goto out;
    rc = po_file_read_at(pl.dir, pl.name, geteuid(), PO_OFFLINE_FILE_MAX, &text,
                         &len, &bad);
    if (rc == PO_NOT_FOUND) {
        rc = PO_OK;
        goto out;
    }
    if (rc != PO_OK) {
        rc = po_fail(err, rc, "offline verifier %s is unusable: %s", pl.path,
                     bad.msg);
        goto out;
    }
    if ((rc = decode_entry(text, len, &e, &bad)) == PO_NOMEM) {
        rc = po_fail(err, rc, "out of memory");
        goto out;
    }
    if (rc != PO_OK) {
        (void)snprintf(why, sizeof(why), "not a verifier file (%s)", bad.msg);
        drop(&pl, log, LOG_WARNING, why);
        rc = PO_OK;
        goto out;
    }
    if (!same(e.profile, p->name) || !same(e.user, user)) {
        drop(&pl, log, LOG_WARNING, "it was made for another profile or user");
        goto out;
    }
    if (!same(e.token_url, p->token_url) || !same(e.client_id, p->client_id)) {
        drop(&pl, log, LOG_NOTICE,
             "it was made for another token_url or client_id");
        goto out;
    }
    res->online_at = e.online_at;
    res->failures = e.failures;
    if (now + PO_OFFLINE_CLOCK_SLACK < e.online_at) {
        res->verdict = PO_OFFLINE_CLOCK;
        goto out;
    }
    if (now - e.online_at > p->offline_lifetime) {
        res->verdict = PO_OFFLINE_EXPIRED;
        if ((rc = po_file_remove_at(pl.dir, pl.dir_path, pl.name, err)) !=
            PO_OK)
            goto out;
        goto out;
    }
    if (e.failures >= max) {
        res->verdict = PO_OFFLINE_LOCKED;
        goto out;
    }
    rc = verifier_check(e.verifier, password, &match, &bad);
    res->checked = rc == PO_OK;
    if (rc != PO_OK) {
        if (rc != PO_IO) {
            rc = po_fail(err, rc, "%s", bad.msg);
            goto out;
        }
        /* A verifier string that does not parse: the file is damaged. */
        (void)snprintf(why, sizeof(why), "%s", bad.msg);
        drop(&pl, log, LOG_WARNING, why);
        rc = PO_OK;
        goto out;
    }
    if (match) {
        res->verdict = PO_OFFLINE_MATCH;
        res->failures = 0;
        if (e.failures != 0) {
            e.failures = 0;
            if ((rc = write_entry(&pl, &e, err)) != PO_OK)
                goto out;
        }
        res->grants = e.grants;
        memset(&e.grants, 0, sizeof(e.grants));
        goto out;
    }
    res->verdict = PO_OFFLINE_WRONG;
    e.failures++;
    res->failures = e.failures;
    rc = write_entry(&pl, &e, err);
out:
    if (text != NULL) {
        po_cleanse(text, len);
        free(text);
    }
    entry_free(&e);
    place_close(&pl);
    if (rc != PO_OK) {
        po_offline_grants_free(&res->grants);
        res->verdict = PO_OFFLINE_NONE;
    }
    return rc;
}

po_rc po_offline_remove(const po_profile *p, const char *user, int *removed,
                        po_err *err)
{
    struct stat st;
    po_rc rc;
    place pl;

    if (removed != NULL)
        *removed = 0;
    rc = place_lock_existing(p, user, &pl, err);
    if (rc == PO_NOT_FOUND) {
        rc = PO_OK;
        goto out;
    }
    if (rc != PO_OK)
        goto out;
    /* Under the lock: a concurrent removal may have been first. */
    if (fstatat(pl.dir, pl.name, &st, AT_SYMLINK_NOFOLLOW) == -1 &&
        errno == ENOENT)
        goto out;
    if ((rc = po_file_remove_at(pl.dir, pl.dir_path, pl.name, err)) == PO_OK &&
        removed != NULL)
        *removed = 1;
out:
    place_close(&pl);
    return rc;
}
