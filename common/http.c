/*
 * http.c - HTTPS requests through a libcurl loaded with dlopen.
 *
 * The only mutable static state is the table of libcurl functions and the
 * status of loading it, both written once inside pthread_once and read-only
 * afterwards.  Everything else lives on the stack of po_http_request.
 */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <curl/curl.h> /* types and constants only: libcurl is not linked */
#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "version.h"

/* OpenSSL 3.0's ssl.h: SSL_OP_BIT(1).  Only the constant is used, and the
 * function is found in the libssl that libcurl loads (nothing links
 * libssl, so a cache hit of the helper never loads it). */
#define PO_SSL_OP_CLEANSE_PLAINTEXT ((uint64_t)1 << 1)
#define PO_OPENSSL_3 0x30000000UL

#define CURL_SONAME "libcurl.so.4"
#define CURL_MIN_VERSION 0x075500 /* 7.85.0: CURLOPT_PROTOCOLS_STR */
#define BACKOFF_BASE_MS 200u
#define RETRY_AFTER_MAX                                                        \
    (366L * 86400)       /* a monthly quota may say next month                 \
                          */
#define URL_SHOW_MAX 256 /* redacted URL in messages and logs */

/* ------------------------------------------------------------------ */
/* libcurl, loaded once                                                */

/* The functions used, resolved with dlsym.  Written only by curl_load()
 * under pthread_once; read-only afterwards. */
static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    void (*easy_reset)(CURL *h);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    curl_version_info_data *(*version_info)(CURLversion age);
    CURLcode (*global_init_mem)(long flags, curl_malloc_callback m,
                                curl_free_callback f, curl_realloc_callback r,
                                curl_strdup_callback s, curl_calloc_callback c);
    /* libssl's, when libcurl's TLS is OpenSSL 3 (else NULL) */
    uint64_t (*ssl_ctx_set_options)(void *ctx, uint64_t op);
} curl_fn;
static po_rc curl_load_rc = PO_CONFIG;
static char curl_load_msg[256] = "libcurl not loaded";
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
/* pthread_once passes no argument: the flags of the request whose thread
 * runs curl_load reach it through this thread's own copy, set just before
 * (so no other thread's request can change them). */
static __thread unsigned curl_load_flags;

/* libcurl's allocator while we are the program that initialised it: the
 * system's, except that a block is cleansed before it is freed or moved,
 * so that the copies libcurl makes of a request (headers with the client
 * secret, a body with a password) and of a response (the tokens) do not
 * stay in freed memory.  Stateless, so safe from every thread and for the
 * host's own use of libcurl. */
static void mem_free(void *p)
{
    if (p != NULL) {
        po_cleanse(p, malloc_usable_size(p));
        free(p);
    }
}

static void *mem_malloc(size_t n)
{
    return malloc(n);
}

static void *mem_realloc(void *p, size_t n)
{
    size_t old;
    void *q;

    if (p == NULL)
        return malloc(n);
    old = malloc_usable_size(p);
    if (n <= old && n > 0)
        return p;
    if ((q = malloc(n > 0 ? n : 1)) == NULL)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    mem_free(p);
    return q;
}

static char *mem_strdup(const char *s)
{
    return strdup(s);
}

static void *mem_calloc(size_t n, size_t size)
{
    return calloc(n, size);
}

/* dl_iterate_phdr's first object is the program itself: is addr in it? */
static int in_main_program(struct dl_phdr_info *pi, size_t size, void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    int i;

    (void)size;
    for (i = 0; i < pi->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &pi->dlpi_phdr[i];
        uintptr_t lo = pi->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && a >= lo && a - lo < ph->p_memsz)
            return 1;
    }
    return -1; /* stop after the first object: not in it */
}

/* libcurl keeps the allocator's addresses for as long as the process
 * lives (it is loaded RTLD_NODELETE), so the object they are in must stay
 * loaded as well: the program itself always does; a dlopen'ed module
 * (pam_oauth.so) is made RTLD_NODELETE.  Returns 0 when that holds. */
static int pin_self(void)
{
    Dl_info info;
    void *self;

    if (dl_iterate_phdr(in_main_program, (void *)(uintptr_t)mem_free) == 1)
        return 0;
    if (dladdr((void *)(uintptr_t)mem_free, &info) == 0 ||
        info.dli_fname == NULL)
        return -1;
    self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    if (self == NULL)
        return -1;
    /* The reference dlopen took is dropped; NODELETE stays. */
    (void)dlclose(self);
    return 0;
}

/* Resolve SSL_CTX_set_options in the libssl libcurl uses, when that is
 * OpenSSL 3 (for SSL_OP_CLEANSE_PLAINTEXT); NULL otherwise. */
static void find_ssl_options(void *h, const curl_version_info_data *vi)
{
    unsigned long (*version_num)(void);

    if (vi->ssl_version == NULL || strncmp(vi->ssl_version, "OpenSSL/", 8) != 0)
        return;
    *(void **)&version_num = dlsym(h, "OpenSSL_version_num");
    if (version_num == NULL || version_num() < PO_OPENSSL_3)
        return;
    *(void **)&curl_fn.ssl_ctx_set_options = dlsym(h, "SSL_CTX_set_options");
}

static void curl_load(void)
{
    void *h;
    const char *e;
    curl_version_info_data *vi;
    CURLcode cc;

    /*
     * SSLKEYLOGFILE: the Debian 12 libcurl (7.88.1, OpenSSL) honours it in
     * release builds -- curl >= 7.58 enables Peter Wu's keylog code for
     * OpenSSL by default, and vtls/keylog.c opens the file named by
     * curl_getenv("SSLKEYLOGFILE") (plain getenv, not secure_getenv) from
     * curl_global_init.  (Checked against curl's source and by experiment:
     * `SSLKEYLOGFILE=f curl https://...` writes the TLS secrets to f.)  In
     * a setuid/setgid program (su, sudo, passwd: AT_SECURE) that would let
     * the invoking user make root append TLS session secrets to any file.
     * OpenSSL 3.0 itself has no SSLKEYLOGFILE support, and reads its own
     * variables (OPENSSL_CONF, SSL_CERT_FILE) with secure_getenv.  So when
     * AT_SECURE and the variable is set, libcurl is not initialised at all;
     * the host's environment is not modified.
     */
    if (getauxval(AT_SECURE) != 0 && getenv("SSLKEYLOGFILE") != NULL) {
        (void)snprintf(curl_load_msg, sizeof(curl_load_msg),
                       "SSLKEYLOGFILE is set in a privileged (setuid) "
                       "process: refusing to initialise libcurl, which "
                       "would write TLS secrets to that file");
        return;
    }
    /* Inside another program (the PAM module) every symbol is bound now,
     * so that a missing one fails here and not in the middle of a login;
     * oauth-token, our own short-lived process, binds lazily what
     * libcurl's dependencies leave lazy (bench row 3). */
    h = dlopen(CURL_SONAME,
               ((curl_load_flags & PO_HTTP_LAZY_BIND) ? RTLD_LAZY : RTLD_NOW) |
                   RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) {
        e = dlerror();
        (void)snprintf(curl_load_msg, sizeof(curl_load_msg),
                       "cannot load %s: %s", CURL_SONAME,
                       e != NULL ? e : "unknown error");
        return;
    }
#define LOAD(field, sym)                                                       \
    do {                                                                       \
        *(void **)&curl_fn.field = dlsym(h, sym);                              \
        if (curl_fn.field == NULL) {                                           \
            (void)snprintf(curl_load_msg, sizeof(curl_load_msg),               \
                           "%s: symbol %s not found", CURL_SONAME, sym);       \
            return;                                                            \
        }                                                                      \
    } while (0)
    LOAD(global_init, "curl_global_init");
    LOAD(easy_init, "curl_easy_init");
    LOAD(easy_setopt, "curl_easy_setopt");
    LOAD(easy_perform, "curl_easy_perform");
    LOAD(easy_getinfo, "curl_easy_getinfo");
    LOAD(easy_cleanup, "curl_easy_cleanup");
    LOAD(easy_reset, "curl_easy_reset");
    LOAD(easy_strerror, "curl_easy_strerror");
    LOAD(slist_append, "curl_slist_append");
    LOAD(slist_free_all, "curl_slist_free_all");
    LOAD(version_info, "curl_version_info");
    LOAD(global_init_mem, "curl_global_init_mem");
#undef LOAD
    vi = curl_fn.version_info(CURLVERSION_NOW);
    if (vi == NULL || vi->version_num < CURL_MIN_VERSION) {
        (void)snprintf(curl_load_msg, sizeof(curl_load_msg),
                       "%s is version %s; 7.85.0 or later is needed",
                       CURL_SONAME,
                       vi != NULL && vi->version ? vi->version : "?");
        return;
    }
    if (!(vi->features & CURL_VERSION_SSL)) {
        (void)snprintf(curl_load_msg, sizeof(curl_load_msg),
                       "%s (%s) was built without TLS support", CURL_SONAME,
                       vi->version ? vi->version : "?");
        return;
    }
    find_ssl_options(h, vi);
    /* Exactly once per process image of this module; never cleaned up:
     * the host program may use libcurl itself.  With our cleansing
     * allocator when this code can stay loaded (a host that initialised
     * libcurl before us keeps its own: libcurl ignores ours then). */
    if (pin_self() == 0)
        cc = curl_fn.global_init_mem(CURL_GLOBAL_DEFAULT, mem_malloc, mem_free,
                                     mem_realloc, mem_strdup, mem_calloc);
    else
        cc = curl_fn.global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        (void)snprintf(curl_load_msg, sizeof(curl_load_msg),
                       "curl_global_init failed: %s",
                       curl_fn.easy_strerror(cc));
        return;
    }
    curl_load_msg[0] = '\0';
    curl_load_rc = PO_OK;
}

static po_rc curl_ready(unsigned flags, po_err *err)
{
    curl_load_flags = flags;
    if (pthread_once(&curl_once, curl_load) != 0)
        return po_fail(err, PO_CONFIG, "cannot initialise libcurl");
    if (curl_load_rc != PO_OK)
        return po_fail(err, curl_load_rc, "%s", curl_load_msg);
    return PO_OK;
}

/* ------------------------------------------------------------------ */
/* URLs                                                                */

typedef struct url_parts {
    const char *scheme; /* without "://" */
    size_t scheme_len;
    const char *hostport; /* authority without userinfo */
    size_t hostport_len;
    const char *host; /* without brackets */
    size_t host_len;
    const char *port; /* NULL when absent */
    size_t port_len;
    int has_userinfo;
    const char *path; /* up to '?' or '#' */
    size_t path_len;
} url_parts;

/* Split an absolute URL.  Returns 0, or -1 when it is not scheme://... */
static int url_split(const char *url, url_parts *u)
{
    const char *p = url, *auth, *end, *at, *q;

    memset(u, 0, sizeof(*u));
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return -1;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
           (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return -1;
    u->scheme = url;
    u->scheme_len = (size_t)(p - url);
    auth = p + 3;
    end = auth + strcspn(auth, "/?#");
    at = NULL;
    for (q = auth; q < end; q++)
        if (*q == '@')
            at = q;
    u->has_userinfo = at != NULL;
    u->hostport = at != NULL ? at + 1 : auth;
    u->hostport_len = (size_t)(end - u->hostport);
    u->host = u->hostport;
    if (u->hostport_len > 0 && u->hostport[0] == '[') {
        const char *rb = memchr(u->hostport, ']', u->hostport_len);
        if (rb == NULL)
            return -1;
        u->host = u->hostport + 1;
        u->host_len = (size_t)(rb - u->host);
        q = rb + 1;
    } else {
        const char *colon = memchr(u->hostport, ':', u->hostport_len);
        u->host_len =
            colon != NULL ? (size_t)(colon - u->hostport) : u->hostport_len;
        q = u->hostport + u->host_len;
    }
    if (q < end) {
        if (*q != ':')
            return -1;
        u->port = q + 1;
        u->port_len = (size_t)(end - u->port);
    }
    u->path = end;
    u->path_len = strcspn(end, "?#");
    return 0;
}

/* Append bytes to out[*o] (size n), percent-encoding spaces and control
 * characters so that a message stays on one line. */
static void show_append(char *out, size_t n, size_t *o, const char *s,
                        size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f) {
            if (*o + 3 >= n)
                break;
            out[(*o)++] = '%';
            out[(*o)++] = hex[c >> 4];
            out[(*o)++] = hex[c & 15];
        } else {
            if (*o + 1 >= n)
                break;
            out[(*o)++] = (char)c;
        }
    }
    out[*o] = '\0';
}

void po_http_redact_url(const char *url, char *out, size_t n)
{
    url_parts u;
    size_t o = 0;

    if (out == NULL || n == 0)
        return;
    out[0] = '\0';
    if (url == NULL)
        return;
    if (url_split(url, &u) == 0) {
        show_append(out, n, &o, u.scheme, u.scheme_len);
        show_append(out, n, &o, "://", 3);
        show_append(out, n, &o, u.hostport, u.hostport_len);
        show_append(out, n, &o, u.path, u.path_len);
    } else {
        /* Not an absolute URL: show what follows any '@' (userinfo) and
         * stops before a query or fragment. */
        size_t end = strcspn(url, "?#");
        const char *at = memrchr(url, '@', end);
        const char *s = at != NULL ? at + 1 : url;
        show_append(out, n, &o, s, (size_t)(url + end - s));
    }
}

static int host_is(const url_parts *u, const char *name)
{
    return u->host_len == strlen(name) &&
           strncasecmp(u->host, name, u->host_len) == 0;
}

/* 127.0.0.0/8 (dotted quad only), ::1, localhost. */
static int host_is_loopback(const url_parts *u)
{
    char buf[64];
    unsigned char a[16];

    if (host_is(u, "localhost"))
        return 1;
    if (u->host_len == 0 || u->host_len >= sizeof(buf))
        return 0;
    memcpy(buf, u->host, u->host_len);
    buf[u->host_len] = '\0';
    if (u->host != u->hostport) /* [IPv6] */
        return inet_pton(AF_INET6, buf, a) == 1 &&
               IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a);
    return inet_pton(AF_INET, buf, a) == 1 && a[0] == 127;
}

static int scheme_is(const url_parts *u, const char *s)
{
    return u->scheme_len == strlen(s) &&
           strncasecmp(u->scheme, s, u->scheme_len) == 0;
}

po_rc po_http_check_url(const char *url, int allow_http, po_err *err)
{
    char shown[URL_SHOW_MAX];
    url_parts u;
    const char *p;
    size_t i;

    if (url == NULL || url[0] == '\0')
        return po_fail(err, PO_CONFIG, "the token URL is empty");
    po_http_redact_url(url, shown, sizeof(shown));
    for (p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return po_fail(err, PO_CONFIG,
                           "%s: URL contains a space or control character",
                           shown);
    if (url_split(url, &u) != 0)
        return po_fail(err, PO_CONFIG, "%s: not an absolute https:// URL",
                       shown);
    if (u.has_userinfo)
        return po_fail(err, PO_CONFIG,
                       "%s: user name or password in the URL refused "
                       "(use client_id and client_secret)",
                       shown);
    if (memchr(u.hostport, '\\', u.hostport_len) != NULL)
        return po_fail(err, PO_CONFIG, "%s: backslash in the host name", shown);
    if (u.host_len == 0)
        return po_fail(err, PO_CONFIG, "%s: URL has no host name", shown);
    for (i = 0; u.port != NULL && i < u.port_len; i++)
        if (u.port[i] < '0' || u.port[i] > '9')
            return po_fail(err, PO_CONFIG, "%s: bad port number", shown);
    if (scheme_is(&u, "https"))
        return PO_OK;
    if (scheme_is(&u, "http")) {
        if (!allow_http)
            return po_fail(err, PO_CONFIG,
                           "%s: http:// refused, use https:// (allow_http "
                           "permits http:// to a loopback host only)",
                           shown);
        if (!host_is_loopback(&u))
            return po_fail(err, PO_CONFIG,
                           "%s: http:// is only allowed to a loopback host "
                           "(127.0.0.0/8, ::1, localhost)",
                           shown);
        return PO_OK;
    }
    return po_fail(err, PO_CONFIG, "%s: scheme not allowed, use https://",
                   shown);
}

/* ------------------------------------------------------------------ */
/* callbacks                                                           */

typedef struct xfer {
    po_http_resp *resp;
    const po_http_req *req;
    po_rc body_rc; /* why the write callback stopped the transfer */
    size_t sent;   /* bytes of req->body read_cb has handed over */
} xfer;

/* The request body, handed to libcurl from the caller's (cleansed) buffer
 * through its upload buffer: with CURLOPT_POSTFIELDS libcurl would also
 * copy a small body into the buffer it builds the request head in. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems, left;

    if (x->req->body == NULL)
        return 0;
    left = x->req->body_len - x->sent;
    if (n > left)
        n = left;
    memcpy(buf, x->req->body + x->sent, n);
    x->sent += n;
    return n;
}

/* Each TLS context libcurl makes: OpenSSL cleanses the plaintext it has
 * decrypted into its read buffer (the token response) once we have read
 * it (SSL_OP_CLEANSE_PLAINTEXT, OpenSSL 3). */
static CURLcode ssl_ctx_cb(CURL *h, void *ssl_ctx, void *ud)
{
    (void)h;
    (void)ud;
    if (curl_fn.ssl_ctx_set_options != NULL)
        (void)curl_fn.ssl_ctx_set_options(ssl_ctx, PO_SSL_OP_CLEANSE_PLAINTEXT);
    return CURLE_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    po_rc rc;

    if (x->req->sink != NULL) {
        if (x->req->sink(x->req->sink_ctx, data, n) == 0)
            return n;
        x->resp->stopped = 1;
        return 0;
    }
    if ((rc = po_buf_append(&x->resp->body, data, n)) != PO_OK) {
        x->body_rc = rc;
        return 0; /* anything but n aborts the transfer */
    }
    return n;
}

static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};

static int parse_2digits(const char *s, int *out)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return 0;
}

/* IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT", parsed
 * without the locale (strptime's %a/%b follow LC_TIME). */
static int parse_http_date(const char *s, size_t n, time_t *out)
{
    struct tm tm;
    int hi, lo, m;
    time_t t;

    if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' ||
        memcmp(s + 26, "GMT", 3) != 0)
        return -1;
    memset(&tm, 0, sizeof(tm));
    for (m = 0; m < 12 && memcmp(s + 8, months[m], 3) != 0; m++)
        ;
    if (m == 12 || parse_2digits(s + 5, &tm.tm_mday) != 0 ||
        parse_2digits(s + 12, &hi) != 0 || parse_2digits(s + 14, &lo) != 0 ||
        parse_2digits(s + 17, &tm.tm_hour) != 0 ||
        parse_2digits(s + 20, &tm.tm_min) != 0 ||
        parse_2digits(s + 23, &tm.tm_sec) != 0)
        return -1;
    tm.tm_mon = m;
    tm.tm_year = hi * 100 + lo - 1900;
    if ((t = timegm(&tm)) == (time_t)-1)
        return -1;
    *out = t;
    return 0;
}

/* Retry-After: delta-seconds or an HTTP-date (relative to now); -1 when
 * unusable. */
static long parse_retry_after(const char *v, size_t n, int64_t now)
{
    long secs = 0;
    size_t i;
    time_t when;

    if (n == 0)
        return -1;
    if (v[0] >= '0' && v[0] <= '9') {
        for (i = 0; i < n; i++) {
            if (v[i] < '0' || v[i] > '9')
                return -1;
            if (secs < RETRY_AFTER_MAX)
                secs = secs * 10 + (v[i] - '0');
        }
        return secs < RETRY_AFTER_MAX ? secs : RETRY_AFTER_MAX;
    }
    if (parse_http_date(v, n, &when) != 0)
        return -1;
    when -= (time_t)now;
    if (when < 0)
        return 0;
    return when < RETRY_AFTER_MAX ? (long)when : RETRY_AFTER_MAX;
}

void po_http_header(po_http_resp *resp, const char *data, size_t n, int64_t now)
{
    size_t name_len;
    const char *colon, *v, *end;

    /* A new status line (after a 1xx, say): forget earlier headers. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        resp->content_type[0] = '\0';
        resp->cache_control[0] = '\0';
        resp->retry_after = -1;
        return;
    }
    if ((colon = memchr(data, ':', n)) == NULL)
        return;
    name_len = (size_t)(colon - data);
    v = colon + 1;
    end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                       end[-1] == '\t'))
        end--;
    if (name_len == 12 && strncasecmp(data, "Content-Type", 12) == 0) {
        size_t len = (size_t)(end - v);
        if (len >= sizeof(resp->content_type))
            len = sizeof(resp->content_type) - 1;
        memcpy(resp->content_type, v, len);
        resp->content_type[len] = '\0';
    } else if (name_len == 11 && strncasecmp(data, "Retry-After", 11) == 0) {
        resp->retry_after = parse_retry_after(v, (size_t)(end - v), now);
    } else if (name_len == 13 && strncasecmp(data, "Cache-Control", 13) == 0) {
        size_t len = (size_t)(end - v);
        if (len >= sizeof(resp->cache_control))
            len = sizeof(resp->cache_control) - 1;
        memcpy(resp->cache_control, v, len);
        resp->cache_control[len] = '\0';
    }
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems;

    po_http_header(x->resp, data, n, (int64_t)time(NULL));
    return n;
}

/* ------------------------------------------------------------------ */
/* one attempt                                                         */

static po_rc map_curl_code(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return PO_TIMEOUT;
    case CURLE_SSL_CACERT_BADFILE: /* the CA file, not the server */
        return PO_CONFIG;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        return PO_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
        return PO_CONFIG;
    case CURLE_OUT_OF_MEMORY:
        return PO_NOMEM;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    default:
        return PO_NETWORK;
    }
}

/* What happened, for the message; curl's own words follow in brackets. */
static const char *describe(po_rc rc, CURLcode cc)
{
    if (cc == CURLE_SSL_CACERT_BADFILE)
        return "no usable CA certificates in ca_file (or the system store)";
    switch (rc) {
    case PO_TIMEOUT:
        return "timed out";
    case PO_TLS:
        return "TLS handshake or certificate verification failed";
    case PO_CONFIG:
        return "request refused by libcurl";
    case PO_NOMEM:
        return "out of memory";
    default:
        return "network error";
    }
}

#define SETOPT(opt, val)                                                       \
    do {                                                                       \
        CURLcode sc_ = curl_fn.easy_setopt(h, opt, val);                       \
        if (sc_ != CURLE_OK) {                                                 \
            rc =                                                               \
                po_fail(err, PO_CONFIG, "%s %s: libcurl refused %s (%s)",      \
                        req->method, shown, #opt, curl_fn.easy_strerror(sc_)); \
            goto out;                                                          \
        }                                                                      \
    } while (0)

/* Add a header line, or fail with PO_NOMEM.  The line may hold a secret:
 * the copy on the stack is cleansed by the caller. */
static int add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_fn.slist_append(*l, line);

    if (n == NULL)
        return -1;
    *l = n;
    return 0;
}

static void free_headers(struct curl_slist *l)
{
    struct curl_slist *p;

    /* The Authorization line holds the client secret. */
    for (p = l; p != NULL; p = p->next)
        if (p->data != NULL)
            po_cleanse(p->data, strlen(p->data));
    if (l != NULL)
        curl_fn.slist_free_all(l);
}

/* curl_easy_perform with SIGPIPE blocked in this thread (libpq's way): a
 * SIGPIPE raised by a write to a closed socket stays pending while
 * blocked; it is consumed if it was not pending before, and the caller's
 * mask is restored.  Signal dispositions are never touched. */
static CURLcode perform_nosigpipe(CURL *h)
{
    sigset_t pipe_set, old, pending;
    int was_pending = 0, blocked;
    CURLcode cc;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (sigpending(&pending) == 0)
        was_pending = sigismember(&pending, SIGPIPE) == 1;
    blocked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old) == 0;
    cc = curl_fn.easy_perform(h);
    if (blocked) {
        if (!was_pending && sigpending(&pending) == 0 &&
            sigismember(&pending, SIGPIPE) == 1) {
            const struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe_set, NULL, &zero) == -1 && errno == EINTR)
                ;
        }
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return cc;
}

/* The query string of url, or NULL: used to keep curl's error text out of
 * a message when it would repeat it. */
static const char *url_query(const char *url)
{
    const char *q = strchr(url, '?');

    return q != NULL && q[1] != '\0' ? q + 1 : NULL;
}

static po_rc attempt(const po_http_opts *opts, const po_http_req *req,
                     const char *shown, uint64_t remaining, po_http_resp *resp,
                     po_err *err)
{
    po_rc rc = PO_OK;
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    po_buf line;
    xfer x = {resp, req, PO_OK, 0};
    char errbuf[CURL_ERROR_SIZE];
    const char *query, *why;
    long connect_ms, status = 0;
    curl_off_t appconnect = 0;
    int http_ok;
    CURLcode cc;

    po_buf_init(&line, 64 * 1024, 1); /* a header line */
    errbuf[0] = '\0';
    po_buf_free(&resp->body);
    resp->status = 0;
    resp->content_type[0] = '\0';
    resp->cache_control[0] = '\0';
    resp->retry_after = -1;
    resp->stopped = 0;
    resp->connected = 0;

    if (opts->conn != NULL && opts->conn->handle != NULL) {
        /* Options go, the connection and TLS session stay. */
        h = opts->conn->handle;
        curl_fn.easy_reset(h);
    } else if ((h = curl_fn.easy_init()) == NULL) {
        rc = po_fail(err, PO_NOMEM, "%s %s: curl_easy_init failed", req->method,
                     shown);
        goto out;
    } else if (opts->conn != NULL) {
        opts->conn->handle = h;
    }
    /* po_http_check_url has accepted http:// only to a loopback host with
     * allow_http. */
    http_ok = opts->allow_http && strncasecmp(req->url, "http:", 5) == 0;
    connect_ms = opts->connect_timeout_ms > 0 &&
                         (uint64_t)opts->connect_timeout_ms < remaining
                     ? opts->connect_timeout_ms
                     : (long)remaining;

    SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, http_ok ? "http,https" : "https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, http_ok ? "http,https" : "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    /* TLS 1.2 or later, whatever the system's OpenSSL configuration would
     * allow (libcurl 7.88 asks OpenSSL for TLS 1.0 and up by default). */
    SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (curl_fn.ssl_ctx_set_options != NULL) {
        SETOPT(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
        SETOPT(CURLOPT_SSL_CTX_DATA, NULL);
    }
    if (opts->ca_file != NULL)
        SETOPT(CURLOPT_CAINFO, opts->ca_file);
    if (opts->cert_file != NULL)
        SETOPT(CURLOPT_SSLCERT, opts->cert_file);
    if (opts->key_file != NULL)
        SETOPT(CURLOPT_SSLKEY, opts->key_file);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)remaining);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)PO_HTTP_BODY_MAX);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, &x);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, &x);
    SETOPT(CURLOPT_USERAGENT, "pam-oauth/" PO_VERSION);
    /* libcurl honours http_proxy/https_proxy/all_proxy/no_proxy from the
     * environment by default; a privileged (setuid) process must not let
     * its invoker route the request (and the client secret) elsewhere. */
    if (getauxval(AT_SECURE) != 0) {
        SETOPT(CURLOPT_PROXY, "");
        SETOPT(CURLOPT_NOPROXY, "*");
    }

    if (add_header(&hdrs, "Accept: application/json") != 0 ||
        add_header(&hdrs, "Expect:") != 0)
        goto nomem;
    /* No Content-Type without a body (curl would add a form type). */
    if (po_buf_printf(
            &line, "Content-Type:%s%s", req->content_type != NULL ? " " : "",
            req->content_type != NULL ? req->content_type : "") != PO_OK ||
        add_header(&hdrs, line.data) != 0)
        goto nomem;
    po_buf_free(&line);
    if (req->authorization != NULL) {
        if (po_buf_printf(&line, "Authorization: %s", req->authorization) !=
            PO_OK)
            goto nomem;
        if (add_header(&hdrs, line.data) != 0)
            goto nomem;
        po_buf_free(&line);
    }
    SETOPT(CURLOPT_HTTPHEADER, hdrs);

    if (strcmp(req->method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else {
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE,
               (curl_off_t)(req->body != NULL ? req->body_len : 0));
        SETOPT(CURLOPT_READFUNCTION, read_cb);
        SETOPT(CURLOPT_READDATA, &x);
    }

    cc = perform_nosigpipe(h);
    /* The Authorization header is not needed any more. */
    (void)curl_fn.easy_setopt(h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    free_headers(hdrs);
    hdrs = NULL;
    (void)curl_fn.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    resp->status = status;
    if (curl_fn.easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &appconnect) ==
            CURLE_OK &&
        appconnect > 0)
        resp->connected = 1;
    if (cc == CURLE_WRITE_ERROR && resp->stopped)
        goto out; /* the sink ended it */
    if (cc == CURLE_WRITE_ERROR && x.body_rc == PO_NOMEM) {
        rc = po_fail(err, PO_NOMEM,
                     "%s %s: out of memory reading the "
                     "response",
                     req->method, shown);
        goto out;
    }
    if ((cc == CURLE_WRITE_ERROR && x.body_rc == PO_TOO_LARGE) ||
        cc == CURLE_FILESIZE_EXCEEDED) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s %s: response body larger than 1 MiB", req->method,
                     shown);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = map_curl_code(cc);
        /* curl's detailed text names hosts, ports and certificates; it is
         * left out should it ever quote the URL's query (parameters). */
        query = url_query(req->url);
        why = errbuf[0] != '\0' && (query == NULL || !strstr(errbuf, query))
                  ? errbuf
                  : curl_fn.easy_strerror(cc);
        rc = po_fail(err, rc, "%s %s: %s (curl: %s)", req->method, shown,
                     describe(rc, cc), why);
        goto out;
    }
    if (status >= 300 && status < 400) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s %s: HTTP %ld: redirect refused", req->method, shown,
                     status);
        goto out;
    }
    goto out;
nomem:
    rc = po_fail(err, PO_NOMEM, "%s %s: out of memory", req->method, shown);
out:
    if (rc != PO_OK)
        po_buf_free(&resp->body);
    po_buf_free(&line);
    if (h != NULL && opts->conn != NULL)
        curl_fn.easy_reset(h); /* no pointer to this frame stays behind */
    else if (h != NULL)
        curl_fn.easy_cleanup(h);
    free_headers(hdrs);
    po_cleanse(errbuf, sizeof(errbuf));
    return rc;
}

/* ------------------------------------------------------------------ */
/* retries                                                             */

/* A ca_file that cannot be read is a local problem, said as such (libcurl
 * would report "error setting certificate file", like a TLS failure). */
static po_rc check_ca_file(const char *path, po_err *err)
{
    struct stat st;
    int fd;

    if (path == NULL)
        return PO_OK;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1)
        return po_fail(err, PO_CONFIG, "ca_file %s cannot be read: %s", path,
                       strerror(errno));
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        return po_fail(err, PO_CONFIG, "ca_file %s is not a regular file",
                       path);
    }
    close(fd);
    return PO_OK;
}

static uint64_t backoff_ms(int n)
{
    uint64_t base = (uint64_t)BACKOFF_BASE_MS << (n < 16 ? n : 16);
    uint32_t r;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        /* xorshift32 from the clock: only jitter, never a secret */
        r = (uint32_t)po_mono_ms() ^ (uint32_t)(uintptr_t)&r ^ 0x9e3779b9u;
        r ^= r << 13;
        r ^= r >> 17;
        r ^= r << 5;
    }
    /* +-25 % */
    return base * (75u + r % 51u) / 100u;
}

po_rc po_http_request(const po_http_opts *opts, const po_http_req *req,
                      po_http_resp *resp, po_err *err)
{
    po_rc rc = PO_OK;
    po_err e; /* the last attempt's outcome */
    char shown[URL_SHOW_MAX];
    uint64_t now, delay;
    int n, tries, retryable;

    resp->status = 0;
    po_buf_init(&resp->body, PO_HTTP_BODY_MAX, 1);
    resp->content_type[0] = '\0';
    resp->cache_control[0] = '\0';
    resp->retry_after = -1;
    resp->attempts = 0;
    resp->stopped = 0;
    po_err_clear(&e);

    if (opts == NULL || req == NULL || req->url == NULL ||
        req->method == NULL ||
        (strcmp(req->method, "POST") != 0 && strcmp(req->method, "GET") != 0)) {
        rc = po_fail(&e, PO_USAGE, "po_http_request: bad arguments");
        goto out;
    }
    po_http_redact_url(req->url, shown, sizeof(shown));
    if (opts->deadline_ms == 0) {
        rc = po_fail(&e, PO_USAGE, "%s %s: no deadline given", req->method,
                     shown);
        goto out;
    }
    if ((rc = po_http_check_url(req->url, opts->allow_http, &e)) != PO_OK ||
        (rc = check_ca_file(opts->ca_file, &e)) != PO_OK ||
        (rc = curl_ready(opts->flags, &e)) != PO_OK)
        goto out;

    tries = 1 + (opts->retries > 0 ? opts->retries : 0);
    for (n = 0; n < tries; n++) {
        now = po_mono_ms();
        if (now >= opts->deadline_ms) {
            rc = po_fail(&e, PO_TIMEOUT,
                         "%s %s: deadline reached before attempt %d",
                         req->method, shown, n + 1);
            break;
        }
        po_err_clear(&e);
        rc = attempt(opts, req, shown, opts->deadline_ms - now, resp, &e);
        resp->attempts++;

        /* What may be tried again: connection failures, a connect
         * timeout that left time before the deadline, 5xx and 429. */
        retryable =
            rc == PO_NETWORK ||
            (rc == PO_TIMEOUT && po_mono_ms() < opts->deadline_ms) ||
            (rc == PO_OK && (resp->status >= 500 || resp->status == 429));
        if (!retryable || n + 1 >= tries)
            break;

        delay = backoff_ms(n);
        if (rc == PO_OK && (resp->status == 429 || resp->status == 503) &&
            resp->retry_after >= 0 &&
            (uint64_t)resp->retry_after * 1000u > delay)
            delay = (uint64_t)resp->retry_after * 1000u;
        /* Sleep only when there is time left for another attempt after
         * it; otherwise the last outcome stands. */
        if (po_mono_ms() + delay >= opts->deadline_ms)
            break;
        if (rc != PO_OK)
            po_logf(opts->log, LOG_INFO,
                    "%s; retrying in %lu ms (attempt %d of %d)", e.msg,
                    (unsigned long)delay, n + 2, tries);
        else
            po_logf(opts->log, LOG_INFO,
                    "%s %s: HTTP %ld; retrying in %lu ms (attempt %d of %d)",
                    req->method, shown, resp->status, (unsigned long)delay,
                    n + 2, tries);
        po_sleep_ms(delay);
    }
out:
    if (rc != PO_OK)
        po_buf_free(&resp->body);
    if (err != NULL) {
        *err = e;
        err->rc = rc;
        err->http_status = resp->status;
    }
    return rc;
}

po_rc po_http_get(const po_http_opts *opts, const char *url, const char *what,
                  po_http_resp *resp, po_err *err)
{
    po_http_req req;
    char show[URL_SHOW_MAX];
    po_rc rc;

    memset(resp, 0, sizeof(*resp));
    po_buf_init(&resp->body, PO_HTTP_BODY_MAX, 1);
    if ((rc = po_http_check_url(url, opts->allow_http, err)) != PO_OK)
        return rc;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;
    po_http_redact_url(url, show, sizeof(show));
    po_logf(opts->log, LOG_DEBUG, "fetching the %s from %s", what, show);
    if ((rc = po_http_request(opts, &req, resp, err)) != PO_OK)
        return rc;
    if (resp->status != 200) {
        rc = po_fail(
            err, resp->status >= 500 ? PO_SERVER_ERROR : PO_MALFORMED_RESPONSE,
            "GET %s (%s): HTTP %ld", show, what, resp->status);
        if (err != NULL)
            err->http_status = resp->status;
        return rc;
    }
    return PO_OK;
}

void po_http_resp_free(po_http_resp *resp)
{
    if (resp == NULL)
        return;
    po_buf_free(&resp->body);
}

void po_http_conn_close(po_http_conn *c)
{
    if (c == NULL || c->handle == NULL)
        return;
    /* A handle exists only once libcurl was loaded. */
    curl_fn.easy_cleanup(c->handle);
    c->handle = NULL;
}
