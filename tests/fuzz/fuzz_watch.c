/*
 * fuzz_watch - the fleet lock's watch stream as it lands: etcd's JSON
 * gateway sends one JSON message per line over a long-lived HTTP response,
 * and libcurl hands the bytes over in whatever pieces the network made.
 * This file includes common/etcd.c to reach its static watch_sink (the
 * framing: lines into messages, a bounded buffer) and watch_message (what
 * a message means for the waiter: the entry changed, the lock was
 * released, the stream broke, the token expired).
 *
 * Input: byte 0 picks the revisions the waiter watches after (low two
 * bits: the entry's, next two: the lock's), byte 1 the size of the
 * pieces (0: the whole stream at once), the rest is the stream.  The keys
 * watched are /pam-oauth/p/entry and /pam-oauth/p/lock.
 *
 * Properties: the outcome, the last revision seen and the reason do not
 * depend on how the stream is cut (whole, in pieces of byte 1's size, one
 * byte at a time, or line by line); the sink asks to stop exactly when
 * there is an outcome; with no outcome the buffer holds exactly the bytes
 * after the last newline, NUL-terminated; the reason of a broken stream
 * is printable; nothing leaks.
 */
#include "../../common/etcd.c"

#include "fuzz.h"

static const char ENTRY[] = "/pam-oauth/p/entry";
static const char LOCK[] = "/pam-oauth/p/lock";

typedef struct result {
    watch_outcome outcome;
    int64_t progress;
    char why[256];
} result;

static int64_t rev_of(unsigned bits)
{
    static const int64_t revs[4] = {0, 5, 100, INT64_MAX - 1};

    return revs[bits & 3];
}

static void start(watch_state *w, unsigned flags)
{
    memset(w, 0, sizeof(*w));
    w->entry_key = ENTRY;
    w->lock_key = LOCK;
    w->entry_rev = rev_of(flags);
    w->lock_rev = rev_of(flags >> 2); /* progress 0, outcome WATCH_NONE */
    po_buf_init(&w->line, PO_ETCD_ANSWER_MAX, 0);
}

/* The bytes after the last '\n' of s (all of it when there is none). */
static size_t tail_of(const char *s, size_t n)
{
    size_t i = n;

    while (i > 0 && s[i - 1] != '\n')
        i--;
    return n - i;
}

/* Feed s in pieces of `piece` bytes (0: at once; SIZE_MAX: line by line,
 * each line with its newline) and check the sink's own contract. */
static void feed(const char *s, size_t n, unsigned flags, size_t piece,
                 result *out)
{
    watch_state w;
    size_t off = 0, len;
    int stop = 0;

    start(&w, flags);
    while (off < n && !stop) {
        if (piece == SIZE_MAX) {
            const char *nl = memchr(s + off, '\n', n - off);
            len = nl == NULL ? n - off : (size_t)(nl - (s + off)) + 1;
        } else {
            len = piece == 0 || piece > n - off ? n - off : piece;
        }
        stop = watch_sink(&w, s + off, len);
        FUZZ_CHECK(stop == (w.outcome != WATCH_NONE),
                   "sink said %d with outcome %d", stop, (int)w.outcome);
        off += len;
    }
    if (w.outcome == WATCH_NONE) {
        size_t t = tail_of(s, n);
        FUZZ_CHECK(w.line.len == t, "%zu bytes kept, %zu after the last line",
                   w.line.len, t);
        FUZZ_CHECK(t == 0 || (memcmp(w.line.data, s + n - t, t) == 0 &&
                              w.line.data[t] == '\0'),
                   "the kept bytes are not the stream's tail");
    } else {
        FUZZ_CHECK(memchr(w.why, '\0', sizeof(w.why)) != NULL &&
                       fuzz_no_controls(w.why),
                   "reason \"%s\" not printable", w.why);
        FUZZ_CHECK(w.outcome != WATCH_BROKEN || w.why[0] != '\0',
                   "a broken stream without a reason");
    }
    out->outcome = w.outcome;
    out->progress = w.progress;
    memcpy(out->why, w.why, sizeof(out->why));
    po_buf_free(&w.line);
}

static void same(const result *a, const result *b, const char *how)
{
    FUZZ_CHECK(a->outcome == b->outcome, "%s: outcome %d, whole %d", how,
               (int)b->outcome, (int)a->outcome);
    FUZZ_CHECK(a->progress == b->progress, "%s: progress %lld, whole %lld", how,
               (long long)b->progress, (long long)a->progress);
    FUZZ_CHECK(strcmp(a->why, b->why) == 0, "%s: reason \"%s\", whole \"%s\"",
               how, b->why, a->why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned flags = fuzz_byte(&in), piece = fuzz_byte(&in);
    const char *s = (const char *)in.p;
    size_t n = in.n;
    result whole, cut;

    feed(s, n, flags, 0, &whole);
    feed(s, n, flags, piece, &cut);
    same(&whole, &cut, "in pieces");
    feed(s, n, flags, SIZE_MAX, &cut);
    same(&whole, &cut, "line by line");
    if (n <= 4096) { /* one byte at a time costs a call per byte */
        feed(s, n, flags, 1, &cut);
        same(&whole, &cut, "byte by byte");
    }
    return 0;
}
