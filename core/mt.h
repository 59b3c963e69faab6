/*
 * mt.h -- the public contract of the mtable core.
 *
 * The core is the MigratingTable engine: the entity model, the OData filter,
 * the backend-table interface, the in-memory table, the migration protocol,
 * the account interface (tables by name) and the in-memory account, the
 * configuration-service interface and the migrator.
 *
 * What the core must never do:
 *   - I/O of any kind (no sockets, no files, no clocks beyond the runtime);
 *   - create a thread, take a lock or wait except through an mt_rt, so that
 *     the systematic concurrency tester can own every interleaving;
 *   - exit() or abort() on bad input: errors travel back as mt_status values.
 *
 * Ownership: every function that returns a pointer says who frees it. Unless
 * stated otherwise, pointer arguments are borrowed for the call only.
 */
#ifndef MT_H
#define MT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Status: an HTTP status plus the Azure error code, as a value.             */

#define MT_CODE_MAX 48
#define MT_MSG_MAX 192

typedef struct mt_status {
    int http;                /* 0 on success, else the HTTP status code */
    int index;               /* failing batch operation index, or -1 */
    char code[MT_CODE_MAX];  /* Azure error code, "" on success */
    char message[MT_MSG_MAX];
} mt_status;

/* Azure error codes the core produces. */
/* A guard refused the call for good: this process may no longer act (an
 * authority replica that stopped leading). Not transient: never repeated. */
#define MT_ERR_NOT_LEADER "NotLeader"
#define MT_ERR_ENTITY_EXISTS "EntityAlreadyExists"
#define MT_ERR_NOT_FOUND "ResourceNotFound"
#define MT_ERR_CONDITION "UpdateConditionNotSatisfied"
#define MT_ERR_INVALID_INPUT "InvalidInput"
#define MT_ERR_INVALID_VALUE "InvalidValue"
#define MT_ERR_OUT_OF_RANGE "OutOfRangeInput"
#define MT_ERR_PROPERTY_TOO_LARGE "PropertyValueTooLarge"
#define MT_ERR_ENTITY_TOO_LARGE "EntityTooLarge"
#define MT_ERR_TOO_MANY_PROPS "TooManyProperties"
#define MT_ERR_SERVER_BUSY "ServerBusy"
#define MT_ERR_INTERNAL "InternalError"
#define MT_ERR_NOT_IMPLEMENTED "NotImplemented"
#define MT_ERR_TABLE_NOT_FOUND "TableNotFound"
#define MT_ERR_TABLE_EXISTS "TableAlreadyExists"
#define MT_ERR_TABLE_BEING_DELETED "TableBeingDeleted"

/* Success. Inline, and only the strings' first bytes set: a status is
 * returned by value from every call of every layer, and zeroing all of
 * its text each time was a measurable part of a point read. */
static inline mt_status mt_ok(void)
{
    mt_status st;
    st.http = 0;
    st.index = -1;
    st.code[0] = '\0';
    st.message[0] = '\0';
    return st;
}
/* 503 ServerBusy "out of memory": what an allocation failure answers, so
 * that a client retries rather than give up. */
mt_status mt_oom(void);
/* Builds an error status; index -1 unless set afterwards. */
mt_status mt_error(int http, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline bool mt_is_ok(const mt_status *st) { return st->http == 0; }
/* Whether st says the table itself does not exist (404 TableNotFound), as
 * for a table deleted while the migrator or verify worked on it. */
bool mt_table_gone(const mt_status *st);

/* ------------------------------------------------------------------------ */
/* String builder (buf.c): a growable string, NUL-terminated once anything   */
/* was put. Start from (mt_buf){0}. After a failed allocation oom is set     */
/* and every further call does nothing, so a caller checks once, at the end. */

typedef struct mt_buf {
    char *p; /* owned; NULL until the first put */
    size_t len, cap;
    bool oom;
} mt_buf;

void mt_buf_put(mt_buf *b, const char *s, size_t n);
/* Room for n more bytes at once, for a writer that knows its size ahead. */
void mt_buf_grow(mt_buf *b, size_t n);
void mt_buf_puts(mt_buf *b, const char *s); /* NULL puts nothing */
/* Any length; a format vsnprintf cannot print counts as a failure. */
void mt_buf_printf(mt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string, which the caller frees ("" when nothing was put), with its
 * length in *len (may be NULL); NULL after a failure. Either way b is empty
 * again. */
char *mt_buf_take(mt_buf *b, size_t *len);
/* Frees what b holds; b is empty again. */
void mt_buf_clear(mt_buf *b);

/* ------------------------------------------------------------------------ */
/* Text (text.c): the byte-level rules every reader and writer shares.       */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
 * The length (1..4) of the well-formed sequence at s, of which at most n
 * bytes are read, or 0 when it is ill-formed; *cp (may be NULL) receives
 * the code point. Reading stops at the first byte that cannot continue the
 * sequence, so it never passes a NUL. */
size_t mt_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);
/* s[0..n) is well-formed UTF-8 throughout. */
bool mt_utf8_valid(const char *s, size_t n);
/* The value of the hex digit c (either case), or -1. */
int mt_hex_digit(int c);
/* A Guid as Azure writes it: 8-4-4-4-12 lowercase hex digits, the bytes in
 * textual order. */
#define MT_GUID_TEXT 37
void mt_guid_format(const uint8_t g[16], char out[MT_GUID_TEXT]);

/* ------------------------------------------------------------------------ */
/* Entities and EDM values.                                                  */

typedef enum mt_edm {
    MT_EDM_STRING,
    MT_EDM_INT32,
    MT_EDM_INT64,
    MT_EDM_DOUBLE,
    MT_EDM_BOOLEAN,
    MT_EDM_DATETIME, /* 100 ns ticks since 0001-01-01T00:00:00Z */
    MT_EDM_GUID,
    MT_EDM_BINARY,
} mt_edm;

/* A typed value. String and Binary point at bytes: a value built with the
 * mt_v_* constructors borrows them; a value stored in an entity owns them.
 * Strings are UTF-8 and additionally NUL-terminated. */
typedef struct mt_value {
    mt_edm type;
    union {
        int32_t i32;
        int64_t i64;
        double dbl;
        bool b;
        int64_t ticks;
        uint8_t guid[16];
        struct {
            char *ptr;
            size_t len;
        } bytes; /* STRING and BINARY */
    } u;
} mt_value;

mt_value mt_v_str(const char *s); /* borrows s */
mt_value mt_v_strn(const char *s, size_t len);
mt_value mt_v_i32(int32_t v);
mt_value mt_v_i64(int64_t v);
mt_value mt_v_dbl(double v);
mt_value mt_v_bool(bool v);
mt_value mt_v_datetime(int64_t ticks);
mt_value mt_v_guid(const uint8_t g[16]);
mt_value mt_v_binary(const void *p, size_t len); /* borrows p */

/* Deep copy into *dst (which must not own anything). */
void mt_value_copy(mt_value *dst, const mt_value *src);
/* Frees what *v owns. */
void mt_value_clear(mt_value *v);
/* Same type and same value; doubles compare bitwise, so NaN equals NaN and
 * -0 differs from 0 (the value a client stored is what it reads back). */
bool mt_value_equal(const mt_value *a, const mt_value *b);
const char *mt_edm_name(mt_edm t); /* "Edm.String", ... */

/* DateTime text as Azure writes it: "2024-01-02T03:04:05.1234567Z", always
 * seven fractional digits (datetime.c). */
#define MT_DATETIME_MAX 40
void mt_datetime_format(int64_t ticks, char out[MT_DATETIME_MAX]);
/* ISO 8601 as Azure accepts it: date, 'T', hh:mm[:ss[.f{1,7}]], then 'Z' or
 * an offset (none means UTC). False when malformed or outside years
 * 0001..9999. */
bool mt_datetime_parse(const char *s, size_t len, int64_t *ticks);
/* The proleptic Gregorian calendar behind both, for the other date formats:
 * days from 0001-01-01 to y-m-d (m 1..12), its inverse for days >= 0, and
 * the length of month m of year y. */
int64_t mt_days_from_civil(int64_t y, int m, int d);
void mt_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int mt_days_in_month(int64_t y, int m);

typedef struct mt_prop {
    char *name;
    mt_value value;
} mt_prop;

#define MT_MAX_USER_PROPS 252

typedef struct mt_entity {
    char *pk;          /* owned */
    char *rk;          /* owned */
    int64_t timestamp; /* ticks; 0 = unset */
    char *etag;        /* owned; NULL = none */
    size_t nprops;
    size_t cap;
    mt_prop *props; /* user properties, in insertion order, names unique */
    bool oom;       /* a set failed: a property is missing; a table refuses
                       to write it (503 ServerBusy), clones keep the mark */
    /* Sharing: a table may hand one stored row to several readers that
     * only read it (mt_entity_list.share) instead of a copy each. */
    bool frozen;          /* never changes again (a table's stored row) */
    bool reserved;        /* frozen: a property is named _mtable_* */
    unsigned refs;        /* holders beyond the first; atomic */
    struct mt_memo *memo; /* derived text kept with a frozen row; atomic */
} mt_entity;

/* What a writer derives from a frozen row once and keeps with it (its
 * JSON text): one memo a row, of the kind that attached it first, freed
 * through release when the row is. */
typedef struct mt_memo {
    const void *kind; /* the writer's tag, to tell its memos from others' */
    void (*release)(struct mt_memo *m);
} mt_memo;

/* Returns a new entity with copies of the keys; the caller frees it. */
mt_entity *mt_entity_new(const char *pk, const char *rk);
void mt_entity_free(mt_entity *e);
mt_entity *mt_entity_clone(const mt_entity *e); /* caller frees */
/* One more holder of e (a frozen row): returns e, which the caller frees
 * like any other entity, and must not change. Safe from any thread. */
mt_entity *mt_entity_ref(const mt_entity *e);
/* Marks e as never changing again: it may be shared and carry a memo;
 * sets e->reserved. */
void mt_entity_freeze(mt_entity *e);
/* The memo attached to e, or NULL. */
mt_memo *mt_entity_memo(const mt_entity *e);
/* Attaches m to a frozen e unless it has one: true when attached (e owns
 * m from now on), false when e is not frozen or another memo came first
 * (the caller keeps m). Safe from any thread. */
bool mt_entity_memo_attach(const mt_entity *e, mt_memo *m);
/* Borrowed pointer into e, or NULL when absent. */
const mt_value *mt_entity_get(const mt_entity *e, const char *name);
/* Sets (adds or overwrites) a property with a deep copy of *v. */
/* Copies v into property name. False (and e->oom set) when out of memory. */
bool mt_entity_set(mt_entity *e, const char *name, const mt_value *v);
bool mt_entity_remove(mt_entity *e, const char *name);
void mt_entity_set_etag(mt_entity *e, const char *etag); /* copies */
/* Same keys and same user properties (order-insensitive); the timestamp
 * and the ETag are not compared. */
bool mt_entity_same_content(const mt_entity *a, const mt_entity *b);

/* Primary-key order: ordinal over UTF-16 code units, the order Azure and
 * Azurite use when they page a query (so a key outside the Basic
 * Multilingual Plane sorts below U+E000..U+FFFF). Compares pk, then rk. */
int mt_str_cmp(const char *a, const char *b);
int mt_key_cmp(const char *pk1, const char *rk1, const char *pk2, const char *rk2);

/* 400 OutOfRangeInput unless k is a key Azure accepts (at most 1 KiB; no
 * '/', '\\', '#', '?' or control characters). what names it in the message. */
mt_status mt_key_check(const char *what, const char *k);

typedef struct mt_key {
    char *pk; /* owned */
    char *rk; /* owned */
} mt_key;
void mt_key_set(mt_key *k, const char *pk, const char *rk);
void mt_key_clear(mt_key *k);

/* A growable list of owned entities. */
typedef struct mt_entity_list {
    mt_entity **v;
    size_t n;
    size_t cap;
    bool oom; /* a push failed (or pushed NULL): rows are missing */
    /* Set by a reader that only reads the rows: a table may then push its
     * own frozen rows (mt_entity_ref) rather than copies. Kept by clear. */
    bool share;
} mt_entity_list;
/* Takes e. When the list cannot grow, or e is NULL (a copy that failed),
 * e is freed and oom set: whoever returns the list checks it once. */
void mt_entity_list_push(mt_entity_list *l, mt_entity *e);
void mt_entity_list_clear(mt_entity_list *l);              /* frees all */

/* ------------------------------------------------------------------------ */
/* OData filter: one parser, an expression tree that evaluates, prints and   */
/* answers structural questions.                                             */

typedef enum mt_cmp_op { MT_EQ, MT_NE, MT_GT, MT_GE, MT_LT, MT_LE } mt_cmp_op;
typedef enum mt_filter_kind {
    MT_F_CMP, /* property op literal */
    MT_F_AND,
    MT_F_OR,
    MT_F_NOT,
    MT_F_TRUE, /* a bare boolean literal: true or false (u.b) */
} mt_filter_kind;

typedef struct mt_filter mt_filter;
struct mt_filter {
    mt_filter_kind kind;
    union {
        struct {
            char *prop; /* owned; PartitionKey/RowKey/Timestamp are system */
            mt_cmp_op op;
            mt_value lit; /* owned */
        } cmp;
        struct {
            mt_filter *l, *r; /* owned */
        } bin;
        mt_filter *sub; /* MT_F_NOT, owned */
        bool b;         /* MT_F_TRUE */
    } u;
};

#define MT_FILTER_MAX_COMPARISONS 15

/* Parses an OData $filter. On success *out is a new tree the caller frees.
 * On failure returns 400 InvalidInput with a message naming the position. */
mt_status mt_filter_parse(const char *text, size_t len, mt_filter **out);
void mt_filter_free(mt_filter *f);
mt_filter *mt_filter_clone(const mt_filter *f);
/* Azure's rules: a comparison against a missing property or a property of a
 * different type is false. PartitionKey and RowKey compare as strings,
 * Timestamp as a DateTime. */
bool mt_filter_eval(const mt_filter *f, const mt_entity *e);
/* Prints a filter Azure accepts; parse(print(f)) is equal to f. The caller
 * frees the string. */
char *mt_filter_print(const mt_filter *f);
size_t mt_filter_count_comparisons(const mt_filter *f);
/* The partition every matching entity must have, or NULL. Borrowed. */
const char *mt_filter_pinned_partition(const mt_filter *f);
/* A filter that reads only PartitionKey and RowKey and that every row
 * matching f also matches (the key-only conjuncts of f), or NULL when f
 * (which may be NULL) has none. A new copy the caller frees. Such a filter
 * may go to both sides of a merge: a row passes it or not by its key
 * alone, so it never separates a row from the copy that shadows it. */
mt_filter *mt_filter_key_part(const mt_filter *f);

/* Builders (each takes ownership of its filter arguments). */
mt_filter *mt_filter_cmp(const char *prop, mt_cmp_op op, const mt_value *lit);
mt_filter *mt_filter_and(mt_filter *l, mt_filter *r);
mt_filter *mt_filter_or(mt_filter *l, mt_filter *r);
mt_filter *mt_filter_not(mt_filter *sub);

/* ------------------------------------------------------------------------ */
/* Runtime: every thread, lock and wait of the core goes through this, so a  */
/* tester can schedule them. mt_rt_pthread() is the production runtime.      */

typedef struct mt_rt mt_rt;
typedef struct mt_mutex mt_mutex;
typedef struct mt_cond mt_cond;
typedef struct mt_thread mt_thread;

typedef struct mt_rt_ops {
    mt_mutex *(*mutex_new)(mt_rt *rt);
    void (*mutex_free)(mt_rt *rt, mt_mutex *m);
    void (*lock)(mt_rt *rt, mt_mutex *m);
    void (*unlock)(mt_rt *rt, mt_mutex *m);
    mt_cond *(*cond_new)(mt_rt *rt);
    void (*cond_free)(mt_rt *rt, mt_cond *c);
    void (*cond_wait)(mt_rt *rt, mt_cond *c, mt_mutex *m);
    void (*cond_broadcast)(mt_rt *rt, mt_cond *c);
    /* Starts fn(arg) on a new thread; join returns its result. */
    mt_thread *(*thread_start)(mt_rt *rt, void *(*fn)(void *), void *arg,
                               const char *name);
    void *(*thread_join)(mt_rt *rt, mt_thread *t);
    /* Wall-clock time in 100 ns ticks since 0001-01-01T00:00:00Z; logical
     * time under the tester. */
    int64_t (*now_ticks)(mt_rt *rt);
    /* Monotonic milliseconds from an arbitrary start, for leases and
     * timeouts; simulated time under the tester. */
    int64_t (*mono_ms)(mt_rt *rt);
    /* cond_wait that also returns once mono_ms() >= deadline_ms; false
     * then (the caller re-checks its predicate either way). */
    bool (*cond_timedwait)(mt_rt *rt, mt_cond *c, mt_mutex *m, int64_t deadline_ms);
} mt_rt_ops;

struct mt_rt {
    const mt_rt_ops *ops;
};

mt_rt *mt_rt_pthread(void); /* static; never freed */

/* ------------------------------------------------------------------------ */
/* The backend-table interface (the C analogue of IChainTable2).             */

typedef enum mt_op_kind {
    MT_OP_INSERT,
    MT_OP_REPLACE,
    MT_OP_MERGE,
    MT_OP_DELETE,
    MT_OP_INSERT_OR_REPLACE,
    MT_OP_INSERT_OR_MERGE,
    MT_OP_DELETE_IF_EXISTS, /* internal: delete, and absence is success */
} mt_op_kind;

#define MT_BATCH_MAX 100
#define MT_ETAG_MAX 96

typedef struct mt_op {
    mt_op_kind kind;
    const mt_entity *entity; /* borrowed; for deletes only the keys count */
    const char *if_match;    /* Replace/Merge/Delete: "*" or an ETag;
                                Replace/Merge with NULL is rejected */
} mt_op;

typedef struct mt_op_result {
    int http;                 /* 201 for Insert, 204 otherwise */
    char etag[MT_ETAG_MAX];   /* the new ETag; "" for deletes */
} mt_op_result;

/* ETags as the service writes them (etag.c): W/"datetime'<Timestamp, ':'
 * as %3A>'". mt_etag_format writes the one of a row stamped at ticks. */
void mt_etag_format(int64_t ticks, char out[MT_ETAG_MAX]);
/* The time an ETag of that form carries (the W in either case, any
 * percent-escapes); false for any other ETag. */
bool mt_etag_time(const char *etag, int64_t *ticks);
/* An If-Match value the service accepts: "*" or a weak ETag W/"..."; any
 * other value gets 400 InvalidInput. */
bool mt_etag_valid(const char *if_match);
/* Does If-Match value if_match hold for a row whose ETag is etag (NULL: no
 * row)? "*" always; else the same text, or two datetime ETags of one time. */
bool mt_etag_matches(const char *if_match, const char *etag);

typedef struct mt_table mt_table;
typedef struct mt_stream mt_stream;

typedef struct mt_stream_ops {
    /* *out = the next matching row in key order (caller frees), or NULL at
     * the end. */
    mt_status (*next)(mt_stream *s, mt_entity **out);
    /* The key of the row next() would return, into *out (which the caller
     * clears); false at the end. May read ahead. */
    mt_status (*continuation)(mt_stream *s, mt_key *out, bool *more);
    void (*close)(mt_stream *s);
} mt_stream_ops;

struct mt_stream {
    const mt_stream_ops *ops;
};

typedef struct mt_table_ops {
    /* n in 1..MT_BATCH_MAX, every op in one partition, distinct row keys.
     * Atomic: all succeed (results filled) or none applies (the status
     * carries the failing op's index). */
    mt_status (*execute_batch)(mt_table *t, const mt_op *ops, size_t n,
                               mt_op_result *results);
    /* All rows of partition pk matching f (NULL = all), read at one
     * instant, in key order, appended to *out. */
    mt_status (*query_atomic)(mt_table *t, const char *pk, const mt_filter *f,
                              mt_entity_list *out);
    /* A stream of the rows matching f (NULL = all) with key >= start (NULL =
     * from the beginning). Each row reflects some state between the open
     * and its return. *out is closed by the caller. */
    mt_status (*query_stream)(mt_table *t, const mt_filter *f,
                              const mt_key *start, mt_stream **out);
    /* One row, or 404 ResourceNotFound. *out is freed by the caller. */
    mt_status (*retrieve)(mt_table *t, const char *pk, const char *rk,
                          mt_entity **out);
    void (*destroy)(mt_table *t);
    /* Optional (NULL: not offered; mt_table_keys falls back to
     * query_stream). Like query_stream with no filter, but the rows may
     * carry only their keys and ETag: for walks that need no more.
     * Decorators pass it on. */
    mt_status (*query_keys)(mt_table *t, const mt_key *start, mt_stream **out);
    /* Optional (NULL: not offered; only the memory table has one).
     * A number that changes whenever what a read of the table could
     * return may have changed: every call that takes the table's write
     * path, failed ones included, sets it to a new value of one
     * process-wide counter that only grows, so no two states of any
     * tables share one. false when there is none now (a decorator that
     * would refuse the read, a table that is gone). Decorators pass it
     * on. */
    bool (*write_version)(mt_table *t, uint64_t *out);
    /* Optional (NULL: mt_table_retrieve falls back to retrieve). Like
     * retrieve, but *out may be the table's own frozen row (mt_entity_ref)
     * rather than a copy: for a caller that only reads the row, then frees
     * it as usual. Decorators pass it on. */
    mt_status (*retrieve_shared)(mt_table *t, const char *pk, const char *rk, mt_entity **out);
} mt_table_ops;

struct mt_table {
    const mt_table_ops *ops;
};

/* Convenience wrappers. */
static inline mt_status mt_table_batch(mt_table *t, const mt_op *ops, size_t n,
                                       mt_op_result *res)
{
    return t->ops->execute_batch(t, ops, n, res);
}
static inline void mt_table_destroy(mt_table *t)
{
    if (t)
        t->ops->destroy(t);
}
/* One row (retrieve); with share, through retrieve_shared when the table
 * offers it, so *out may be a frozen row the caller must not change. */
static inline mt_status mt_table_retrieve(mt_table *t, const char *pk, const char *rk, bool share,
                                          mt_entity **out)
{
    if (share && t->ops->retrieve_shared)
        return t->ops->retrieve_shared(t, pk, rk, out);
    return t->ops->retrieve(t, pk, rk, out);
}
/* A stream of every row with key >= start (NULL = from the beginning),
 * keys and ETag at least: query_keys when the table offers it, else
 * query_stream. */
mt_status mt_table_keys(mt_table *t, const mt_key *start, mt_stream **out);
/* Reads a whole stream into *out (used by tests and small scans). */
mt_status mt_table_scan(mt_table *t, const mt_filter *f, mt_entity_list *out);
/* t's write_version, or false when it offers none. */
bool mt_table_write_version(mt_table *t, uint64_t *out);

/* ------------------------------------------------------------------------ */
/* The in-memory table: sorted, thread-safe (through rt), atomic batches,   */
/* the service's ETags (from a Timestamp that strictly increases per table, */
/* read from rt's clock), and the real service's limits (100 ops a batch,   */
/* 252 properties, 1 KiB keys, 15 comparisons a filter).                    */

/* Returns a new table; destroy it with mt_table_destroy. name only labels
 * it (ETags are times, as the service's are). */
mt_table *mt_memtable_new(mt_rt *rt, const char *name);
size_t mt_memtable_count(mt_table *t); /* rows, for tests */
void mt_memtable_clear(mt_table *t);   /* every row deleted at once */

/* ------------------------------------------------------------------------ */
/* Accounts: the tables of one account, by name (the table service's       */
/* Create/Delete/Query Tables). Names compare case-insensitively and keep   */
/* the case they were created with. Implemented by the memory account       */
/* below, by the Azure client (az_client_account) and by decorators.        */

typedef struct mt_account mt_account;

typedef struct mt_account_ops {
    /* A table of the account by name; destroy it with mt_table_destroy
     * before the account. Does not check that the table exists: while it
     * does not, its calls answer 404 TableNotFound. NULL with *st set on a
     * bad or reserved name, or out of memory. */
    mt_table *(*open)(mt_account *a, const char *name, mt_status *st);
    /* Creates name; 409 TableAlreadyExists when it exists. *created (may be
     * NULL) is true only when this call made it. */
    mt_status (*create)(mt_account *a, const char *name, bool *created);
    /* Deletes name and its rows; 404 (ResourceNotFound or TableNotFound)
     * when there is none. */
    mt_status (*remove)(mt_account *a, const char *name);
    /* Names in code-point order, from the first >= from (NULL: the start),
     * at most max of them (0: all). *names holds *n strings (free them with
     * mt_names_free); *next (may be NULL) receives where the next page
     * starts (caller frees), NULL after the last page. */
    mt_status (*list)(mt_account *a, const char *from, size_t max, char ***names, size_t *n,
                      char **next);
    void (*destroy)(mt_account *a);
} mt_account_ops;

struct mt_account {
    const mt_account_ops *ops;
};

static inline mt_table *mt_account_open(mt_account *a, const char *name, mt_status *st)
{
    return a->ops->open(a, name, st);
}
static inline mt_status mt_account_create(mt_account *a, const char *name, bool *created)
{
    return a->ops->create(a, name, created);
}
static inline mt_status mt_account_delete(mt_account *a, const char *name)
{
    return a->ops->remove(a, name);
}
static inline void mt_account_destroy(mt_account *a)
{
    if (a)
        a->ops->destroy(a);
}
/* Every name, all pages (account.c). */
mt_status mt_account_list_all(mt_account *a, char ***names, size_t *n);
/* Frees n names and the array (either may be NULL / 0). */
void mt_names_free(char **names, size_t n);
/* One page of a list, for an account that holds every name at once: takes
 * all (k names in any order; NULL when k is 0), sorts it in code-
 * point order and answers as the list operation does, freeing the names
 * left out. */
mt_status mt_names_page(char **all, size_t k, const char *from, size_t max, char ***names,
                        size_t *n, char **next);
/* Whether st is the 409 TableAlreadyExists of a create. */
bool mt_table_existed(const mt_status *st);
/* Binary search of n names sorted case-insensitively, the i-th given by
 * name_at(ctx, i): the index of name, or where it would go (*found false). */
size_t mt_names_find(const void *ctx, size_t n, const char *(*name_at)(const void *ctx, size_t i),
                     const char *name, bool *found);

/* The memory account: named in-memory tables (mt_memtable_new) with the
 * service's rules: a deleted table's rows are gone, and a table created
 * again under that name starts empty. A table opened on it follows the
 * first table of its name it finds; once that one is deleted, it answers
 * 404 TableNotFound for good (open the name again for a newer one).
 * label names the account in messages. Destroy it after its tables. */
mt_account *mt_memaccount_new(mt_rt *rt, const char *label);

/* ------------------------------------------------------------------------ */
/* Configuration service.                                                    */

typedef enum mt_phase {
    MT_PHASE_USE_OLD_HIDE_METADATA = 0,
    MT_PHASE_PREFER_OLD = 1,
    MT_PHASE_PREFER_NEW = 2,
    MT_PHASE_USE_NEW_WITH_TOMBSTONES = 3,
    MT_PHASE_USE_NEW_HIDE_METADATA = 4,
} mt_phase;
#define MT_PHASE_COUNT 5

const char *mt_phase_name(mt_phase p); /* "use_old_hide_metadata", ... */
/* Returns false when name is not a phase. */
bool mt_phase_parse(const char *name, mt_phase *out);

typedef struct mt_config {
    mt_phase phase;
    int64_t version;
    /* Every client has applied this phase (none is in an earlier one). */
    bool settled;
    /* The two tables play swapped roles: the table given as new plays old
     * and the one given as old plays new (a migration back, started where
     * use_new_hide_metadata and use_old_hide_metadata of the swapped roles
     * read and write the same single table). */
    bool reversed;
    /* How many times the roles were swapped (reversed: odd); 0 for a
     * service that never swaps them. */
    int64_t generation;
} mt_config;

typedef struct mt_config_service mt_config_service;
typedef struct mt_subscription mt_subscription;

/* A subscriber that accepts updates. apply runs on the pushing thread and
 * must return once the subscriber has switched to c. */
typedef struct mt_subscriber {
    void (*apply)(void *ctx, const mt_config *c);
    void *ctx;
} mt_subscriber;

typedef struct mt_config_ops {
    /* sub == NULL: a fixed subscription that refuses updates; a push waits
     * until it is dropped. Fills *current. */
    mt_subscription *(*subscribe)(mt_config_service *s, const mt_subscriber *sub,
                                  mt_config *current);
    void (*unsubscribe)(mt_config_service *s, mt_subscription *sub);
    /* Sets the phase (version increments) and returns once every subscriber
     * at the time of the push has applied it or unsubscribed. */
    mt_status (*push)(mt_config_service *s, mt_phase phase);
    void (*destroy)(mt_config_service *s);
} mt_config_ops;

struct mt_config_service {
    const mt_config_ops *ops;
};

/* The configuration now, of any service: a fixed subscription taken and
 * dropped at once (config_local.c). */
mt_config mt_config_now(mt_config_service *s);

/* In-process service; starts in phase `initial`, version 1, settled. */
mt_config_service *mt_config_local_new(mt_rt *rt, mt_phase initial);

/* For services built on the local one (config/), where the version comes
 * from elsewhere and "settled" is known only once remote clients answered:
 * sets phase and version (settled as given) and returns once every local
 * subscriber has applied it, like push. */
mt_status mt_config_local_set(mt_config_service *s, mt_phase phase, int64_t version,
                              bool settled);
/* The same, also setting the roles' generation (mt_config.generation;
 * reversed when odd). */
mt_status mt_config_local_set_roles(mt_config_service *s, mt_phase phase, int64_t generation,
                                    int64_t version, bool settled);
/* Marks the configuration settled if it is still at version. */
void mt_config_local_settle(mt_config_service *s, int64_t version);

/* ------------------------------------------------------------------------ */
/* The MigratingTable (migrating.c, migrating_query.c).                      */

/* Reserved names (clients may not use them). */
#define MT_RK_META "_mtable_partition_meta"
#define MT_RK_ASSERTION "_mtable_partition_populated_assertion"
#define MT_PROP_STATE "_mtable_partition_state"
#define MT_PROP_DELETED "_mtable_deleted"
#define MT_RESERVED_PREFIX "_mtable_"
enum { MT_PARTITION_POPULATED = 1, MT_PARTITION_SWITCHED = 2 };

/* Returns a table that runs the protocol over old and new. Borrows rt, cfg,
 * old_t and new_t, which must outlive it. */
mt_table *mt_migrating_new(mt_rt *rt, mt_config_service *cfg, mt_table *old_t,
                           mt_table *new_t);

/* What a one-partition read (query_atomic) of a migrating table depends
 * on besides its arguments: the configuration it runs under and the write
 * versions of both tables (the larger one: the counter behind them only
 * grows, so a write to either changes it). Two equal marks, with no push
 * able to complete between them (a holding mark), mean the read would
 * return the same rows at both. */
typedef struct mt_read_mark {
    uint64_t writes;
    mt_phase phase;
    int64_t version, generation;
    bool reversed;
    mt_subscription *held; /* set by a holding mark, dropped by release */
} mt_read_mark;

/* Fills *m for t, a table mt_migrating_new made; false (nothing held) when
 * t is no such table or either of its tables offers no write version.
 * hold keeps a fixed subscription until mt_read_mark_release, so the
 * configuration can change at most once meanwhile (a push completes only
 * when it is dropped, and pushes run one at a time): a later mark equal
 * to this one then says nothing moved in between. */
bool mt_read_mark_take(mt_table *t, bool hold, mt_read_mark *m);
void mt_read_mark_release(mt_table *t, mt_read_mark *m);
bool mt_read_mark_equal(const mt_read_mark *a, const mt_read_mark *b);

/* ------------------------------------------------------------------------ */
/* The migrator.                                                             */

typedef struct mt_migrator_stats {
    int64_t rows_copied;
    int64_t rows_cleaned;
    int64_t partitions_switched;
    /* Rows and partitions the copy has to cover in all (counted when a copy
     * starts from scratch, kept across a resume), -1 while unknown. */
    int64_t rows_total;
    int64_t partitions_total;
    /* Done so far, including the part before a resume. */
    int64_t rows_done;
    int64_t partitions_done;
    int64_t backoffs; /* waits after a backend 503 ServerBusy */
    /* Cleanup: rows made clean in new (tombstones deleted, protocol
     * properties stripped) and rows deleted from old; the rows each side
     * held when its cleanup began (-1 while unknown). */
    int64_t rows_cleaned_new, rows_cleaned_old;
    int64_t clean_total_new, clean_total_old;
    /* Tables skipped because they were deleted meanwhile (404 TableNotFound). */
    int64_t tables_skipped;
    /* The last transient backend error the migrator met and retried, as
     * "<http> <code>: <message>"; "" when none. */
    char last_error[160];
} mt_migrator_stats;

/* The steps a migration goes through, for progress reports. */
typedef enum mt_migrator_step {
    MT_STEP_PUSHING, /* pushing a phase and waiting for every client */
    MT_STEP_COPYING,
    MT_STEP_COPIED, /* the copy is complete: use_new_with_tombstones may follow */
    MT_STEP_CLEANING,
    MT_STEP_DONE,
} mt_migrator_step;

/* What the cleanup makes of old once every client uses new
 * (mtablectl migrate --old-after). */
typedef enum mt_old_after {
    MT_OLD_AFTER_EMPTY,  /* every row deleted, the table kept (the default):
                            dropped and created again when the hooks can
                            (delete_old and recreate_old), else row by row */
    MT_OLD_AFTER_KEEP,   /* the application's rows kept as a rollback copy;
                            only the protocol rows deleted */
    MT_OLD_AFTER_DELETE, /* the table itself deleted */
} mt_old_after;

const char *mt_old_after_name(mt_old_after a); /* "empty", "keep", "delete" */
bool mt_old_after_parse(const char *name, mt_old_after *out);

/* Called by the migrator's thread after each step and each row; must be
 * quick. ctx is the hook's own. */
typedef struct mt_migrator_hooks {
    void (*progress)(void *ctx, mt_migrator_step step, const mt_migrator_stats *stats);
    void *ctx;
    /* Stop once the configuration is in phase `until` and that phase's work
     * is done (prefer_new: the copy); otherwise run to the end. */
    bool stop_early;
    mt_phase until;
    /* Partitions copied at once (0 or 1: one at a time; at most 64). */
    int parallel;
    /* Copy throttle in rows per second (0: unlimited). */
    double rows_per_second;
    /* Checkpoints: save_checkpoint(ctx, text) is called whenever the copy
     * has durably advanced (text is opaque, NUL-terminated); it must be
     * stored before it returns. load_checkpoint returns the last text saved
     * (the caller frees it) or NULL to start from the beginning. Either may
     * be NULL. */
    mt_status (*save_checkpoint)(void *ctx, const char *checkpoint);
    char *(*load_checkpoint)(void *ctx);
    /* Polled between batches; true makes the migrator stop at the next safe
     * point and return 409 MigrationPaused (after a final checkpoint). */
    bool (*should_pause)(void *ctx);
    /* Called on the migrator's thread when table `table` (an index into the
     * pairs) turned out to be deleted while `step` ("copying", "cleaning")
     * ran on it: a backend answered 404 TableNotFound. The migrator skips
     * the table and goes on. May be NULL. */
    void (*table_gone)(void *ctx, size_t table, const char *step);
    /* What the cleanup makes of old. MT_OLD_AFTER_DELETE needs delete_old,
     * which deletes old table `table` (an index into the pairs) from its
     * account; 404 TableNotFound counts as done. Called on the migrator's
     * thread, after new is clean, once per table (again after a resume). */
    mt_old_after old_after;
    mt_status (*delete_old)(void *ctx, size_t table);
    /* Creates old table `table` again after delete_old, for
     * MT_OLD_AFTER_EMPTY: ok when it exists (also when it existed), 404
     * TableNotFound when the application's table is gone from new (then
     * nothing is created: a table the application deleted stays deleted),
     * 409 TableBeingDeleted while the service still removes the old one
     * (the cleanup waits and asks again). With both hooks an emptied table
     * is dropped and created again instead of emptied row by row. */
    mt_status (*recreate_old)(void *ctx, size_t table);
} mt_migrator_hooks;

typedef struct mt_table_pair {
    mt_table *old_t;
    mt_table *new_t;
} mt_table_pair;

/* Runs the whole migration from whatever phase cfg is in: push 1, push 2,
 * copy, push 3, push 4, cleanup. Safe to run again after a crash. */
mt_status mt_migrate(mt_rt *rt, mt_config_service *cfg, mt_table *old_t,
                     mt_table *new_t, mt_migrator_stats *stats);

/* The same for n tables that share one configuration (one phase for a
 * whole account): each step runs over every table before the next push.
 * hooks may be NULL. */
mt_status mt_migrate_tables(mt_rt *rt, mt_config_service *cfg, const mt_table_pair *tables,
                            size_t n, const mt_migrator_hooks *hooks, mt_migrator_stats *stats);

/* Going back before any partition is switched (migrator_back.c). */

/* Whether any partition of the old tables is switched (its meta row says
 * SWITCHED); the first found as "NAME / PK" in where (names may be NULL).
 * Reads only. Sound as a promise that none will be switched only while
 * every client holds an unsettled prefer_old or an earlier phase. */
mt_status mt_find_switched(mt_rt *rt, const mt_table_pair *tables, const char *const *names,
                           size_t n, bool *found, char *where, size_t cap);
/* Deletes the protocol rows (meta and assertion rows) of the old tables,
 * counting them in *removed; for an abandoned migration once every client
 * is in use_old_hide_metadata. A table deleted meanwhile is skipped. */
mt_status mt_clean_protocol_rows(mt_rt *rt, const mt_table_pair *tables, size_t n,
                                 int64_t *removed);

/* What a verify pass found (mt_verify_tables). */
typedef struct mt_verify_report {
    bool ok;
    int64_t old_rows;       /* user rows in old */
    int64_t new_rows;       /* user rows in new, live */
    int64_t tombstones;     /* in new */
    int64_t missing;        /* old user rows with no counterpart in new */
    int64_t protocol_rows;  /* meta and assertion rows left in old */
    int64_t reserved_props; /* new rows still carrying an _mtable_ property */
    int64_t unswitched;     /* old partitions with user rows not SWITCHED */
    char first_missing[512]; /* "table: PK / RK" of the first missing row, or "" */
    int64_t tables_skipped;  /* deleted meanwhile (404 TableNotFound): nothing to check */
    char skipped[256];       /* their labels, ", "-separated (cut short when long) */
    int64_t old_tables_left; /* old tables still there although --old-after delete */
    char summary[256];
} mt_verify_report;

/* Checks the tables against what phase promises. Through
 * use_new_with_tombstones (after a copy): every user row of old has its
 * counterpart in new, live or tombstone, and every partition of old is
 * switched. In use_new_hide_metadata after cleanup: old is empty and no row
 * of new carries a tombstone or an _mtable_ property. Reads only. names
 * (may be NULL) label the tables in first_missing. */
mt_status mt_verify_tables(mt_rt *rt, const mt_table_pair *tables, const char *const *names,
                           size_t n, mt_phase phase, bool after_cleanup,
                           mt_verify_report *report);

/* The same, after a cleanup that made old what old_after says: with
 * MT_OLD_AFTER_KEEP old may hold the application's rows but no protocol
 * row; with MT_OLD_AFTER_DELETE every old table is gone (404
 * TableNotFound). Before cleanup old_after changes nothing. */
mt_status mt_verify_tables_after(mt_rt *rt, const mt_table_pair *tables, const char *const *names,
                                 size_t n, mt_phase phase, bool after_cleanup,
                                 mt_old_after old_after, mt_verify_report *report);

#endif
