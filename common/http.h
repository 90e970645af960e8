/*
 * http.h - HTTPS requests with libcurl, for code loaded into other
 * programs.
 *
 * libcurl is not linked: it is loaded with dlopen("libcurl.so.4") the
 * first time a request is made (RTLD_NOW, or RTLD_LAZY when the frontend
 * asks for it with PO_HTTP_LAZY_BIND), and curl_global_init runs exactly
 * once (pthread_once).  A program that never makes a request (a cache hit)
 * never loads the network stack.  curl_global_cleanup is never called.
 *
 * Secrets in memory: libcurl is initialised with curl_global_init_mem and
 * an allocator that cleanses every block before it is freed or moved (its
 * copies of the request head with the Authorization header, of the body,
 * of the response); since libcurl keeps those function addresses, the
 * object holding this code is made RTLD_NODELETE first (pam_oauth.so then
 * stays loaded, like libcurl; when that fails, or when the host had
 * initialised libcurl before, libcurl's own allocator stays).  The body is
 * handed over from the caller's buffer (CURLOPT_READFUNCTION), and with
 * OpenSSL 3 each TLS context gets SSL_OP_CLEANSE_PLAINTEXT (the decrypted
 * response), SSL_CTX_set_options being found in the libssl libcurl loaded.
 *
 * Every transfer: TLS verification on, TLS 1.2 at least
 * (CURLOPT_SSLVERSION), protocols limited to https (http
 * only for a loopback host when allowed), no redirects, CURLOPT_NOSIGNAL,
 * SIGPIPE blocked in the calling thread and the caller's mask restored
 * (with any SIGPIPE raised meanwhile consumed), response body capped at
 * PO_HTTP_BODY_MAX, proxies from the environment unless AT_SECURE,
 * SSLKEYLOGFILE ignored when AT_SECURE, User-Agent "pam-oauth/VERSION".
 * (Release builds of libcurl do read SSLKEYLOGFILE, with getenv, when
 * curl_global_init runs: when AT_SECURE and it is set, libcurl is not
 * loaded and every request fails with PO_CONFIG saying why.)
 */
#ifndef PO_HTTP_H
#define PO_HTTP_H

#include <stdint.h>
#include "err.h"
#include "secret.h"

#define PO_HTTP_BODY_MAX (1024 * 1024)

/* po_http_opts.flags: load libcurl with RTLD_LAZY, for a program of our
 * own (oauth-token), never for code loaded into another process, which
 * keeps RTLD_NOW; only the first request's flags count (libcurl is loaded
 * once). */
#define PO_HTTP_LAZY_BIND 1u

/* A connection kept open between requests to the same server (TLS session
 * and socket reused by libcurl).  Zero-initialise it; pass it in
 * po_http_opts.conn to every request of one conversation; end with
 * po_http_conn_close.  Not for concurrent use. */
typedef struct po_http_conn {
    void *handle; /* libcurl's easy handle, NULL until the first request */
} po_http_conn;

typedef struct po_http_opts {
    const char *ca_file;     /* NULL = system store                  */
    long connect_timeout_ms; /* per attempt                          */
    uint64_t deadline_ms;    /* absolute, po_mono_ms(): bounds every
                                attempt, backoff and Retry-After     */
    int retries;             /* extra attempts after the first       */
    int allow_http;          /* http:// allowed to a loopback host   */
    unsigned flags;          /* PO_HTTP_*                            */
    const po_log *log;
    const char *cert_file; /* client certificate (PEM) for mutual TLS,
                              or NULL                                 */
    const char *key_file;  /* its private key (PEM), or NULL          */
    po_http_conn *conn;    /* connection to reuse, or NULL            */
} po_http_opts;

typedef struct po_http_req {
    const char *method;       /* "POST" or "GET"                      */
    const char *url;          /* may carry secrets in its query: it is
                                 never logged whole                     */
    const char *content_type; /* NULL for no body                     */
    const char *body;         /* may hold secrets                     */
    size_t body_len;
    const char *authorization; /* whole header value, e.g. "Basic ..."
                                  (secret), or NULL                     */
    /* Streaming (a response that does not end by itself, such as a watch):
     * when sink is set, the body goes to sink chunk by chunk as it arrives
     * instead of into resp->body.  sink returns 0 to read on, anything
     * else to end the transfer there: po_http_request then returns PO_OK
     * with resp->stopped set (the caller's context says why it stopped). */
    int (*sink)(void *ctx, const char *data, size_t n);
    void *sink_ctx;
} po_http_req;

typedef struct po_http_resp {
    long status; /* HTTP status of the last attempt      */
    po_buf body; /* secret buffer, at most PO_HTTP_BODY_MAX */
    char content_type[128];
    long retry_after;        /* seconds from Retry-After, -1 if none */
    char cache_control[256]; /* the Cache-Control header, truncated;
                                "" if none (key set lifetimes)        */
    int attempts;            /* how many attempts were made          */
    int stopped;             /* the sink ended the transfer          */
    int connected;           /* the last attempt got as far as a
                                connection (TLS included): the server
                                is up, if slow                        */
} po_http_resp;

/* Check that url is an https URL, or an http URL to a loopback host
 * (127.0.0.0/8, ::1, localhost) when allow_http is set.  The message names
 * the URL without its query string. */
po_rc po_http_check_url(const char *url, int allow_http, po_err *err);

/* Write into out (size n) the URL without query string and userinfo, for
 * messages and logs. */
void po_http_redact_url(const char *url, char *out, size_t n);

/* Record one response header line as it came from the server (n bytes,
 * CRLF included or not, no NUL needed) in resp: Content-Type and
 * Cache-Control (truncated to their fields), Retry-After (delta-seconds,
 * or an IMF-fixdate taken relative to now, the wall clock; capped; -1 when
 * unusable).  A status line ("HTTP/...") clears them all: the headers of
 * an interim 1xx response do not count.  Other lines are ignored. */
void po_http_header(po_http_resp *resp, const char *line, size_t n,
                    int64_t now);

/* Make the request, retrying connection failures, HTTP 5xx and 429 with
 * exponential backoff and Retry-After, all within opts->deadline_ms.
 * PO_OK means an HTTP response was received (any status: the caller
 * interprets it); resp must be freed with po_http_resp_free.  Otherwise:
 * PO_NETWORK, PO_TIMEOUT, PO_TLS, PO_MALFORMED_RESPONSE (body over the
 * cap, a redirect), PO_CONFIG (URL refused, libcurl not loadable, a
 * ca_file that cannot be read or holds no CA certificate), with
 * resp->status set when a response was seen. */
po_rc po_http_request(const po_http_opts *opts, const po_http_req *req,
                      po_http_resp *resp, po_err *err);

/* GET url, a document the caller then reads (what names it in messages:
 * "key set", "discovery document"): the URL checked with
 * po_http_check_url(opts->allow_http) first, a debug line logged, resp
 * initialised here (free it with po_http_resp_free).  PO_OK only for HTTP
 * 200; another status is PO_SERVER_ERROR (5xx) or PO_MALFORMED_RESPONSE,
 * "GET URL (what): HTTP N", with err->http_status set. */
po_rc po_http_get(const po_http_opts *opts, const char *url, const char *what,
                  po_http_resp *resp, po_err *err);

/* Free the response body (cleansed). */
void po_http_resp_free(po_http_resp *resp);

/* Close a connection kept by po_http_opts.conn; c is left zeroed and
 * usable.  A zeroed c is a no-op. */
void po_http_conn_close(po_http_conn *c);

#endif
