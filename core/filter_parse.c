/*
 * filter_parse.c -- the OData $filter parser.
 *
 * Turns the filter subset Azure Table accepts into an mt_filter tree. It is a
 * hand-written tokenizer plus a recursive-descent parser because no library
 * parses OData in C. The text comes straight from clients, so it is treated
 * as hostile: it is (pointer, length) with no NUL terminator promised, every
 * read goes through at() which bounds-checks, nesting and length are capped
 * so recursion stays shallow, and every failure is a 400 InvalidInput that
 * names the offset and the text found there.
 *
 * Grammar, lowest precedence first; binary operators are left-associative:
 *
 *   or      := and ("or" and)*
 *   and     := cmp ("and" cmp)*
 *   cmp     := unary (("eq"|"ne"|"gt"|"ge"|"lt"|"le") unary)?
 *   unary   := "not" unary | primary
 *   primary := "(" or ")" | PROPERTY | LITERAL
 *
 * Every level yields an *operand*: a boolean tree, a property name or a
 * literal. "and", "or" and "not" demand booleans (a bare true/false becomes
 * an MT_F_TRUE node); a comparison demands one property and one literal, in
 * either order. Leaving the operand's kind open until its context is known
 * is what lets "(Age) lt 30", "30 gt Age" and a bare "true" parse with one
 * grammar. As in OData, "not" binds tighter than a comparison, so
 * "not Age lt 30" is an error and "not (Age lt 30)" is what clients write.
 *
 * Keywords and operators are case-sensitive (Azure rejects "EQ"); the type
 * prefixes of literals (datetime, guid, X, binary) are not, as in the WCF
 * Data Services parser behind the real service, and neither are the Boolean
 * literals: "true", "True", "TRUE" and any other casing of true or false
 * (Azure accepts them; github.com/Azure/Azurite/issues/1947 "Azurite should
 * handle Boolean values case-insensitively for Azure parity", fixed in
 * Azurite by pull/1959, whose tests query "myBool eq True" and "eq truE").
 * INF and NaN stay case-sensitive, as OData spells them.
 */
#include "mt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far beyond any URL the service accepts, yet small enough that a linear
 * scan of a hostile input costs nothing. */
#define MT_FILTER_MAX_TEXT (256 * 1024)
/* Caps the height of the resulting tree, so every recursive walk over it
 * stays shallow, and the nesting of parentheses and "not" in the text, so
 * parsing does. The printer spends up to two levels of nesting per level
 * of tree ("not (...)"), hence twice the height: anything printed parses. */
#define MT_FILTER_MAX_DEPTH 64
#define MT_FILTER_MAX_NESTING (2 * MT_FILTER_MAX_DEPTH)
#define MT_PROP_NAME_MAX 255
#define MT_NUMBER_MAX 400

typedef enum mt_tok_kind {
    MT_TOK_END,
    MT_TOK_LPAREN,
    MT_TOK_RPAREN,
    MT_TOK_WORD, /* property name or keyword */
    MT_TOK_LIT,
} mt_tok_kind;

typedef struct mt_token {
    mt_tok_kind kind;
    size_t pos, len; /* span in the text */
    mt_value lit;    /* MT_TOK_LIT; strings and binary borrow buf */
    char *buf;       /* owned bytes behind lit, or NULL */
} mt_token;

typedef enum mt_operand_kind {
    MT_OPND_NONE,
    MT_OPND_BOOL,
    MT_OPND_PROP,
    MT_OPND_LIT,
} mt_operand_kind;

typedef struct mt_operand {
    mt_operand_kind kind;
    size_t pos, len; /* source span, for messages and property names */
    int height;      /* MT_OPND_BOOL: height of f */
    mt_filter *f;    /* MT_OPND_BOOL, owned */
    mt_value lit;    /* MT_OPND_LIT; borrows buf */
    char *buf;       /* owned */
} mt_operand;

typedef struct mt_parser {
    const char *s;
    size_t len;
    size_t pos; /* next unread byte */
    mt_token tok;
    int depth;
    bool failed;
    mt_status err;
} mt_parser;

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

/* Copies up to 20 bytes of the offending text, non-printables as '?', so
 * the message is safe to log and to return in an error body. */
static void mt_excerpt(const mt_parser *p, size_t pos, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    if (len == 0)
        len = 1;
    for (size_t i = pos; i < p->len && i < pos + len && n + 1 < cap && n < 20; i++) {
        unsigned char c = (unsigned char)p->s[i];
        out[n++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    out[n] = '\0';
}

/* Records the first error only: later ones are consequences of it. */
static bool mt_fail(mt_parser *p, size_t pos, size_t len, const char *what)
{
    char near[24];
    if (p->failed)
        return false;
    p->failed = true;
    if (pos >= p->len) {
        p->err = mt_error(400, MT_ERR_INVALID_INPUT, "invalid $filter: %s at end of input", what);
        return false;
    }
    mt_excerpt(p, pos, len, near, sizeof near);
    p->err = mt_error(400, MT_ERR_INVALID_INPUT, "invalid $filter: %s at offset %zu near '%s'",
                      what, pos, near);
    return false;
}

/* An allocation failed: 503 ServerBusy (the client retries), not a 400
 * that would blame its filter. */
static bool mt_fail_oom(mt_parser *p)
{
    if (!p->failed) {
        p->failed = true;
        p->err = mt_oom();
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Characters                                                                */

/* The byte at i, or -1 past the end: the only way the lexer reads text. */
static int mt_at(const mt_parser *p, size_t i)
{
    return i < p->len ? (unsigned char)p->s[i] : -1;
}

static bool mt_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool mt_is_ident_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool mt_is_ident_char(int c)
{
    return mt_is_ident_start(c) || mt_is_digit(c);
}

static bool mt_span_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

static bool mt_span_is_ci(const char *s, size_t n, const char *word)
{
    if (strlen(word) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int a = (unsigned char)s[i], b = (unsigned char)word[i];
        if (a >= 'A' && a <= 'Z')
            a += 'a' - 'A';
        if (a != b)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Typed literal bodies: guid, binary (datetime bodies go to datetime.c)    */

/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx; bytes kept in textual order, so a
 * bytewise comparison is the order of the printed form. */
static bool mt_parse_guid(const char *s, size_t len, uint8_t g[16])
{
    size_t i = 0;
    int nb = 0;
    if (len != 36)
        return false;
    while (i < len) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i++] != '-')
                return false;
            continue;
        }
        int hi = mt_hex_digit((unsigned char)s[i]);
        int lo = mt_hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        g[nb++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return nb == 16;
}

/* An even number of hex digits; *out is malloc'd (never NULL on success). */
static bool mt_parse_hex(const char *s, size_t len, char **out, size_t *n)
{
    char *b;
    if (len % 2 != 0)
        return false;
    b = malloc(len / 2 + 1);
    if (!b)
        return false;
    for (size_t i = 0; i < len; i += 2) {
        int hi = mt_hex_digit((unsigned char)s[i]);
        int lo = mt_hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return false;
        }
        b[i / 2] = (char)(hi << 4 | lo);
    }
    *out = b;
    *n = len / 2;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Tokens                                                                    */

static void mt_token_release(mt_token *t)
{
    free(t->buf);
    t->buf = NULL;
}

static void mt_skip_spaces(mt_parser *p)
{
    for (;;) {
        int c = mt_at(p, p->pos);
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return;
        p->pos++;
    }
}

/* 'text' with '' standing for one quote. */
static bool mt_lex_string(mt_parser *p)
{
    size_t start = p->pos, i = p->pos + 1, n = 0;
    char *buf = NULL;
    for (;; i++) {
        int c = mt_at(p, i);
        if (c < 0)
            return mt_fail(p, start, 1, "unterminated string literal");
        if (c == '\'' && mt_at(p, i + 1) != '\'')
            break;
        if (c == '\'')
            i++;
    }
    if (!mt_utf8_valid(p->s + start + 1, i - start - 1))
        return mt_fail(p, start, i - start, "string literal is not UTF-8");
    buf = malloc(i - start);
    if (!buf)
        return mt_fail_oom(p);
    for (size_t j = start + 1; j < i; j++) {
        buf[n++] = p->s[j];
        if (p->s[j] == '\'')
            j++;
    }
    buf[n] = '\0';
    p->tok.kind = MT_TOK_LIT;
    p->tok.buf = buf;
    p->tok.lit = mt_v_strn(buf, n);
    p->pos = i + 1;
    return true;
}

static bool mt_starts_inf(const mt_parser *p, size_t i)
{
    return mt_at(p, i) == 'I' && mt_at(p, i + 1) == 'N' && mt_at(p, i + 2) == 'F' &&
           !mt_is_ident_char(mt_at(p, i + 3));
}

/* Decimal digits at [i, end) into a magnitude no larger than limit. */
static bool mt_digits_value(const mt_parser *p, size_t i, size_t end, uint64_t limit, uint64_t *out)
{
    uint64_t v = 0;
    for (; i < end; i++) {
        unsigned d = (unsigned)(p->s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool mt_lex_integer(mt_parser *p, size_t start, size_t digits, size_t end, bool neg,
                           bool wide)
{
    uint64_t limit = wide ? (neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX)
                          : (neg ? (uint64_t)INT32_MAX + 1 : INT32_MAX);
    uint64_t v;
    int64_t s;
    if (!mt_digits_value(p, digits, end, limit, &v))
        return mt_fail(p, start, end - start,
                       wide ? "Int64 literal out of range" : "Int32 literal out of range");
    s = (neg && v == (uint64_t)INT64_MAX + 1) ? INT64_MIN : neg ? -(int64_t)v : (int64_t)v;
    p->tok.lit = wide ? mt_v_i64(s) : mt_v_i32((int32_t)s);
    return true;
}

static bool mt_lex_double(mt_parser *p, size_t start, size_t end)
{
    char tmp[MT_NUMBER_MAX + 1];
    char *stop;
    double v;
    if (end - start > MT_NUMBER_MAX)
        return mt_fail(p, start, end - start, "number literal too long");
    memcpy(tmp, p->s + start, end - start);
    tmp[end - start] = '\0';
    v = strtod(tmp, &stop);
    if (*stop != '\0')
        return mt_fail(p, start, end - start, "malformed Double literal");
    if (isinf(v))
        return mt_fail(p, start, end - start, "Double literal out of range");
    p->tok.lit = mt_v_dbl(v);
    return true;
}

/* [+-]digits[.digits][(e|E)[+-]digits][L|l|D|d], or [+-]INF. */
static bool mt_lex_number(mt_parser *p)
{
    size_t start = p->pos, i = p->pos, digits, end;
    bool neg = false, fractional = false;
    int suffix;
    if (mt_at(p, i) == '-' || mt_at(p, i) == '+')
        neg = mt_at(p, i++) == '-';
    if (mt_starts_inf(p, i)) {
        p->tok.kind = MT_TOK_LIT;
        p->tok.lit = mt_v_dbl(neg ? -INFINITY : INFINITY);
        p->pos = i + 3;
        return true;
    }
    for (digits = i; mt_is_digit(mt_at(p, i)); i++)
        ;
    if (mt_at(p, i) == '.') {
        fractional = true;
        if (!mt_is_digit(mt_at(p, ++i)))
            return mt_fail(p, start, i - start, "digits expected after '.'");
        while (mt_is_digit(mt_at(p, i)))
            i++;
    }
    if (mt_at(p, i) == 'e' || mt_at(p, i) == 'E') {
        fractional = true;
        i++;
        if (mt_at(p, i) == '+' || mt_at(p, i) == '-')
            i++;
        if (!mt_is_digit(mt_at(p, i)))
            return mt_fail(p, start, i - start, "malformed exponent");
        while (mt_is_digit(mt_at(p, i)))
            i++;
    }
    end = i;
    suffix = mt_at(p, i);
    if (suffix == 'L' || suffix == 'l' || suffix == 'D' || suffix == 'd')
        i++;
    if (mt_is_ident_char(mt_at(p, i)) || mt_at(p, i) == '.')
        return mt_fail(p, start, i + 1 - start, "malformed number");
    p->tok.kind = MT_TOK_LIT;
    p->pos = i;
    if (suffix == 'L' || suffix == 'l') {
        if (fractional)
            return mt_fail(p, start, i - start, "Int64 literal with a fraction or exponent");
        return mt_lex_integer(p, start, digits, end, neg, true);
    }
    if (fractional || suffix == 'D' || suffix == 'd')
        return mt_lex_double(p, start, end);
    return mt_lex_integer(p, start, digits, end, neg, false);
}

/* prefix'body' where the prefix names the type. */
static bool mt_lex_typed(mt_parser *p, size_t start, size_t plen)
{
    const char *pre = p->s + start, *body;
    size_t open = start + plen, close = open + 1, blen;
    while (mt_at(p, close) >= 0 && mt_at(p, close) != '\'')
        close++;
    if (mt_at(p, close) < 0)
        return mt_fail(p, start, plen + 1, "unterminated typed literal");
    body = p->s + open + 1;
    blen = close - open - 1;
    p->tok.kind = MT_TOK_LIT;
    p->pos = close + 1;
    if (mt_span_is_ci(pre, plen, "datetime")) {
        int64_t ticks;
        if (!mt_datetime_parse(body, blen, &ticks))
            return mt_fail(p, start, p->pos - start, "malformed datetime");
        p->tok.lit = mt_v_datetime(ticks);
    } else if (mt_span_is_ci(pre, plen, "guid")) {
        uint8_t g[16];
        if (!mt_parse_guid(body, blen, g))
            return mt_fail(p, start, p->pos - start, "malformed guid");
        p->tok.lit = mt_v_guid(g);
    } else if (mt_span_is_ci(pre, plen, "x") || mt_span_is_ci(pre, plen, "binary")) {
        size_t n;
        if (!mt_parse_hex(body, blen, &p->tok.buf, &n))
            return mt_fail(p, start, p->pos - start, "malformed binary");
        p->tok.lit = mt_v_binary(p->tok.buf, n);
    } else {
        return mt_fail(p, start, plen, "unknown literal type");
    }
    return true;
}

/* A name, a keyword, true/false, INF/NaN, or the prefix of a typed literal. */
static bool mt_lex_word(mt_parser *p)
{
    size_t start = p->pos, i = p->pos, n;
    const char *w = p->s + start;
    while (mt_is_ident_char(mt_at(p, i)))
        i++;
    n = i - start;
    if (mt_at(p, i) == '\'')
        return mt_lex_typed(p, start, n);
    p->pos = i;
    p->tok.kind = MT_TOK_LIT;
    if (mt_span_is_ci(w, n, "true") || mt_span_is_ci(w, n, "false"))
        p->tok.lit = mt_v_bool(n == 4);
    else if (mt_span_is(w, n, "INF"))
        p->tok.lit = mt_v_dbl(INFINITY);
    else if (mt_span_is(w, n, "NaN"))
        p->tok.lit = mt_v_dbl(NAN);
    else if (mt_span_is(w, n, "null"))
        return mt_fail(p, start, n, "null is not supported");
    else if (n > MT_PROP_NAME_MAX)
        return mt_fail(p, start, n, "property name too long");
    else
        p->tok.kind = MT_TOK_WORD;
    return true;
}

/* Advances to the next token; the previous one's bytes are released. */
static bool mt_lex_next(mt_parser *p)
{
    int c;
    mt_token_release(&p->tok);
    mt_skip_spaces(p);
    p->tok.pos = p->pos;
    p->tok.len = 0;
    c = mt_at(p, p->pos);
    if (c < 0) {
        p->tok.kind = MT_TOK_END;
        return true;
    }
    if (c == '(' || c == ')') {
        p->tok.kind = c == '(' ? MT_TOK_LPAREN : MT_TOK_RPAREN;
        p->pos++;
    } else if (c == '\'') {
        if (!mt_lex_string(p))
            return false;
    } else if (mt_is_digit(c) || ((c == '-' || c == '+') && (mt_is_digit(mt_at(p, p->pos + 1)) ||
                                                             mt_starts_inf(p, p->pos + 1)))) {
        if (!mt_lex_number(p))
            return false;
    } else if (mt_is_ident_start(c)) {
        if (!mt_lex_word(p))
            return false;
    } else {
        return mt_fail(p, p->pos, 1, "unexpected character");
    }
    p->tok.len = p->pos - p->tok.pos;
    return true;
}

static bool mt_tok_is(const mt_parser *p, const char *word)
{
    return p->tok.kind == MT_TOK_WORD && mt_span_is(p->s + p->tok.pos, p->tok.len, word);
}

static bool mt_tok_cmp_op(const mt_parser *p, mt_cmp_op *op)
{
    static const char *const names[] = {"eq", "ne", "gt", "ge", "lt", "le"};
    for (int i = 0; i < 6; i++) {
        if (mt_tok_is(p, names[i])) {
            *op = (mt_cmp_op)i;
            return true;
        }
    }
    return false;
}

static bool mt_tok_is_keyword(const mt_parser *p)
{
    mt_cmp_op op;
    return mt_tok_is(p, "and") || mt_tok_is(p, "or") || mt_tok_is(p, "not") ||
           mt_tok_cmp_op(p, &op);
}

/* ------------------------------------------------------------------------ */
/* Operands and the grammar                                                  */

static void mt_operand_release(mt_operand *o)
{
    mt_filter_free(o->f);
    free(o->buf);
    memset(o, 0, sizeof *o);
}

static mt_filter *mt_filter_bool(bool b)
{
    mt_filter *f = calloc(1, sizeof *f);
    if (f) {
        f->kind = MT_F_TRUE;
        f->u.b = b;
    }
    return f;
}

/* Demands a boolean: a tree stays, a true/false literal becomes a node. */
static bool mt_to_bool(mt_parser *p, mt_operand *o)
{
    if (o->kind == MT_OPND_BOOL)
        return true;
    if (o->kind == MT_OPND_LIT && o->lit.type == MT_EDM_BOOLEAN) {
        o->f = mt_filter_bool(o->lit.u.b);
        if (!o->f)
            return mt_fail_oom(p);
        o->kind = MT_OPND_BOOL;
        o->height = 1;
        return true;
    }
    return mt_fail(p, o->pos, o->len, "expected a boolean expression");
}

/* Makes o a boolean operand holding f (built from o's former tree). */
static bool mt_set_tree(mt_parser *p, mt_operand *o, mt_filter *f, int height, size_t pos)
{
    o->f = f;
    o->kind = MT_OPND_BOOL;
    o->height = height;
    if (!f)
        return mt_fail_oom(p);
    if (height > MT_FILTER_MAX_DEPTH)
        return mt_fail(p, pos, 1, "filter nested too deeply");
    return true;
}

static bool mt_parse_or(mt_parser *p, mt_operand *out);

static bool mt_parse_paren(mt_parser *p, mt_operand *out)
{
    size_t open = p->tok.pos;
    if (++p->depth > MT_FILTER_MAX_NESTING)
        return mt_fail(p, open, 1, "filter nested too deeply");
    if (!mt_lex_next(p) || !mt_parse_or(p, out))
        return false;
    if (p->tok.kind != MT_TOK_RPAREN)
        return mt_fail(p, p->tok.pos, p->tok.len, "expected ')'");
    p->depth--;
    return mt_lex_next(p);
}

static bool mt_parse_primary(mt_parser *p, mt_operand *out)
{
    out->pos = p->tok.pos;
    out->len = p->tok.len;
    switch (p->tok.kind) {
    case MT_TOK_LPAREN:
        return mt_parse_paren(p, out);
    case MT_TOK_WORD:
        if (mt_tok_is_keyword(p))
            return mt_fail(p, p->tok.pos, p->tok.len, "unexpected keyword");
        out->kind = MT_OPND_PROP;
        return mt_lex_next(p);
    case MT_TOK_LIT:
        out->kind = MT_OPND_LIT;
        out->lit = p->tok.lit;
        out->buf = p->tok.buf;
        p->tok.buf = NULL;
        return mt_lex_next(p);
    default:
        return mt_fail(p, p->tok.pos, p->tok.len, "expected an operand");
    }
}

static bool mt_parse_unary(mt_parser *p, mt_operand *out)
{
    size_t pos = p->tok.pos;
    if (!mt_tok_is(p, "not"))
        return mt_parse_primary(p, out);
    if (++p->depth > MT_FILTER_MAX_NESTING)
        return mt_fail(p, pos, 3, "filter nested too deeply");
    if (!mt_lex_next(p) || !mt_parse_unary(p, out) || !mt_to_bool(p, out))
        return false;
    p->depth--;
    return mt_set_tree(p, out, mt_filter_not(out->f), out->height + 1, pos);
}

static mt_cmp_op mt_flip(mt_cmp_op op)
{
    switch (op) {
    case MT_GT:
        return MT_LT;
    case MT_GE:
        return MT_LE;
    case MT_LT:
        return MT_GT;
    case MT_LE:
        return MT_GE;
    default:
        return op;
    }
}

/* Folds "l op r" into l; one side must be a property, the other a literal. */
static bool mt_make_cmp(mt_parser *p, mt_operand *l, mt_operand *r, mt_cmp_op op, size_t oppos)
{
    char name[MT_PROP_NAME_MAX + 1];
    mt_operand *prop = l, *lit = r;
    if (l->kind == MT_OPND_LIT && r->kind == MT_OPND_PROP) {
        prop = r;
        lit = l;
        op = mt_flip(op);
    }
    if (prop->kind != MT_OPND_PROP || lit->kind != MT_OPND_LIT)
        return mt_fail(p, oppos, 2, "a comparison needs one property and one literal");
    memcpy(name, p->s + prop->pos, prop->len);
    name[prop->len] = '\0';
    mt_filter *f = mt_filter_cmp(name, op, &lit->lit);
    mt_operand_release(r);
    mt_operand_release(l);
    return mt_set_tree(p, l, f, 1, oppos);
}

static bool mt_parse_cmp(mt_parser *p, mt_operand *out)
{
    mt_operand r = {0};
    mt_cmp_op op;
    size_t oppos;
    bool ok;
    if (!mt_parse_unary(p, out))
        return false;
    if (!mt_tok_cmp_op(p, &op))
        return true;
    oppos = p->tok.pos;
    ok = mt_lex_next(p) && mt_parse_unary(p, &r) && mt_make_cmp(p, out, &r, op, oppos);
    mt_operand_release(&r);
    return ok;
}

/* One left-associative level: operands from sub joined by word. */
static bool mt_parse_chain(mt_parser *p, mt_operand *out, const char *word,
                           bool (*sub)(mt_parser *, mt_operand *),
                           mt_filter *(*join)(mt_filter *, mt_filter *))
{
    if (!sub(p, out))
        return false;
    while (mt_tok_is(p, word)) {
        mt_operand r = {0};
        size_t pos = p->tok.pos;
        int h;
        if (!mt_to_bool(p, out) || !mt_lex_next(p) || !sub(p, &r) || !mt_to_bool(p, &r)) {
            mt_operand_release(&r);
            return false;
        }
        h = 1 + (out->height > r.height ? out->height : r.height);
        mt_filter *f = join(out->f, r.f);
        out->f = r.f = NULL;
        if (!mt_set_tree(p, out, f, h, pos))
            return false;
    }
    return true;
}

static bool mt_parse_and(mt_parser *p, mt_operand *out)
{
    return mt_parse_chain(p, out, "and", mt_parse_cmp, mt_filter_and);
}

static bool mt_parse_or(mt_parser *p, mt_operand *out)
{
    return mt_parse_chain(p, out, "or", mt_parse_and, mt_filter_or);
}

static mt_status mt_parse_text(mt_parser *p, mt_filter **out)
{
    mt_operand o = {0};
    if (!mt_lex_next(p))
        return p->err;
    if (p->tok.kind == MT_TOK_END) {
        mt_fail(p, p->len, 0, "empty filter");
        return p->err;
    }
    if (mt_parse_or(p, &o)) {
        if (p->tok.kind != MT_TOK_END)
            mt_fail(p, p->tok.pos, p->tok.len, "unexpected trailing input");
        else if (mt_to_bool(p, &o)) {
            *out = o.f;
            o.f = NULL;
        }
    }
    mt_operand_release(&o);
    return p->failed ? p->err : mt_ok();
}

mt_status mt_filter_parse(const char *text, size_t len, mt_filter **out)
{
    mt_parser p = {.s = text, .len = len};
    mt_status st;
    if (!out)
        return mt_error(500, MT_ERR_INTERNAL, "mt_filter_parse: no output");
    *out = NULL;
    if (!text && len)
        return mt_error(500, MT_ERR_INTERNAL, "mt_filter_parse: no text");
    if (len > MT_FILTER_MAX_TEXT)
        return mt_error(400, MT_ERR_INVALID_INPUT, "invalid $filter: longer than %d bytes",
                        MT_FILTER_MAX_TEXT);
    if (len && memchr(text, '\0', len))
        return mt_error(400, MT_ERR_INVALID_INPUT, "invalid $filter: NUL byte at offset %zu",
                        (size_t)((const char *)memchr(text, '\0', len) - text));
    st = mt_parse_text(&p, out);
    mt_token_release(&p.tok);
    return st;
}
