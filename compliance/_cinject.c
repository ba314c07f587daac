/*
 * compliance._cinject: a C version of the injector's "boring markup" regex.
 *
 * skip_boring(data, pos, in_select, comments) returns exactly
 *
 *     (_BORING_IN_SELECT if in_select else _BORING)[bool(comments)].match(data, pos).end()
 *
 * for the patterns built by compliance.inject._boring(). That regex is the specification: this
 * file reproduces it piece by piece, one small function per sub-pattern, each quoting the piece
 * it implements. The top level is
 *
 *     (?:ALT1|ALT2|...)*+
 *
 * and every alternative consumes at least one byte, so the match is: at each position take the
 * first alternative (in the regex's order) that matches, advance, repeat; stop when none does.
 * Nothing follows an alternative inside its iteration except the next (optional) iteration, so
 * each alternative's end is the first match the regex engine finds for it on its own.
 *
 * Conventions: `d` is the data, `n` its length, `i` a position with 0 <= i <= n. A matcher
 * returns the position after its match, or NO_MATCH. Every read is guarded by a bounds check:
 * a construct that needs more bytes than there are does not match, as in the regex.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#define NO_MATCH ((Py_ssize_t)-1)

/* --- character classes ------------------------------------------------------------------- */

/* One bit per byte that some class in the regex names; every other byte has no bit. */
enum {
    C_WS = 1 << 0,    /* \t \n \f \r and space */
    C_SLASH = 1 << 1, /* / */
    C_GT = 1 << 2,    /* > */
    C_DQ = 1 << 3,    /* " */
    C_SQ = 1 << 4,    /* ' */
    C_EQ = 1 << 5,    /* = */
    C_LT = 1 << 6,    /* < */
    C_BT = 1 << 7     /* ` */
};

static const unsigned char CLASS[256] = {
    ['\t'] = C_WS, ['\n'] = C_WS, ['\f'] = C_WS, ['\r'] = C_WS, [' '] = C_WS,
    ['/'] = C_SLASH, ['>'] = C_GT, ['"'] = C_DQ, ['\''] = C_SQ, ['='] = C_EQ,
    ['<'] = C_LT, ['`'] = C_BT,
};

/* The classes used below, as "a byte is in the class when it has none of these bits"
 * (negated classes) or "when it has one of these bits" (the two positive ones). */
#define NOT_NAME (C_WS | C_SLASH | C_GT)                                 /* [^\t\n\f\r />] */
#define NOT_ATTR_NAME (C_WS | C_SLASH | C_GT | C_EQ)                     /* [^\t\n\f\r />=] */
#define NOT_PLAIN_NAME (C_WS | C_SLASH | C_GT | C_DQ | C_SQ | C_EQ | C_LT) /* [^\t\n\f\r />"'=<] */
#define NOT_PLAIN_VALUE (C_WS | C_GT | C_DQ | C_SQ | C_EQ | C_LT | C_BT) /* [^\t\n\f\r >"'=<`] */
#define NOT_VALUE_FIRST (C_WS | C_GT | C_DQ | C_SQ)                      /* [^\t\n\f\r >"'] */
#define NOT_VALUE (C_WS | C_GT)                                          /* [^\t\n\f\r >] */
#define WS (C_WS)                                                        /* [\t\n\f\r ] */
#define WS_SLASH (C_WS | C_SLASH)                                        /* [\t\n\f\r /] */
#define DELIM (C_WS | C_SLASH | C_GT)                                    /* [\t\n\f\r />] */

/* Whether d[i] exists and has one of the bits in `bits`. */
static inline int
has(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, unsigned bits)
{
    return i < n && (CLASS[d[i]] & bits);
}

/* Whether d[i] exists and has none of the bits in `bits` (is in the negated class). */
static inline int
lacks(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, unsigned bits)
{
    return i < n && !(CLASS[d[i]] & bits);
}

/* X*+ for a positive class: the position after the run of bytes with one of `bits`. */
static inline Py_ssize_t
skip_has(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, unsigned bits)
{
    while (i < n && (CLASS[d[i]] & bits))
        i++;
    return i;
}

/* [^...]*+ for a negated class: the position after the run of bytes with none of `bits`. */
static inline Py_ssize_t
skip_lacks(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, unsigned bits)
{
    while (i < n && !(CLASS[d[i]] & bits))
        i++;
    return i;
}

/* Whether d[i] exists and is the byte c. */
static inline int
is(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, unsigned char c)
{
    return i < n && d[i] == c;
}

/* The first c at or after i, or NO_MATCH. */
static inline Py_ssize_t
find(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, unsigned char c)
{
    const unsigned char *p = i < n ? memchr(d + i, c, (size_t)(n - i)) : NULL;
    return p ? p - d : NO_MATCH;
}

/* ASCII lower case: (?i:...) on a bytes pattern folds only A-Z. */
static inline unsigned char
lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* [A-Za-z] */
static inline int
is_letter(unsigned char c)
{
    return lower(c) >= 'a' && lower(c) <= 'z';
}

/* Whether the lower-case ASCII `word` is at d[i:] case-insensitively, within the data. */
static int
word_at(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, const char *word)
{
    for (; *word; word++, i++) {
        if (i >= n || lower(d[i]) != (unsigned char)*word)
            return 0;
    }
    return 1;
}

/* (?i:name1|name2|...)[\t\n\f\r />] -- none of the names is a prefix of another, so the
 * alternation's backtracking cannot find a second way: one of the names, then a delimiter. */
static int
interesting_at(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, const char *const *names)
{
    for (; *names; names++) {
        if (word_at(d, n, i, *names) && has(d, n, i + (Py_ssize_t)strlen(*names), DELIM))
            return 1;
    }
    return 0;
}

/* _INTERESTING_START */
static const char *const START_NAMES[] = {
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
    "plaintext", "template", "svg", "math", "select", NULL,
};

/* _INTERESTING_START + b"|input|keygen" */
static const char *const START_NAMES_IN_SELECT[] = {
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
    "plaintext", "template", "svg", "math", "select", "input", "keygen", NULL,
};

/* _INTERESTING_END */
static const char *const END_NAMES[] = {
    "body", "template", "svg", "math", "select", NULL,
};

/* --- _PLAIN_TAG -------------------------------------------------------------------------- */

/* Whether d[i], d[i+1] are the letters a, b case-insensitively: [aA][bB]. */
static inline int
pair_at(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, char a, char b)
{
    return i + 1 < n && lower(d[i]) == (unsigned char)a && lower(d[i + 1]) == (unsigned char)b;
}

/* (?:[abcdefghjloqruvwyzABCDEFGHJLOQRUVWYZ]
 *   |[sS](?![cC][rR]|[tT][yY]|[vV][gG]|[eE][lL])|[tT](?![eE][xXmM]|[iI][tT])
 *   |[pP](?![lL][aA])|[iI](?![fF][rR]|[nN][pP])|[nN](?![oO][eEfFsS])|[mM](?![aA][tT])
 *   |[xX](?![mM][pP])|[kK](?![eE][yY]))
 * at d[i]: whether it matches (it is always one byte long). */
static int
plain_start_letter(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    if (i >= n)
        return 0;
    i++; /* the lookaheads look at the bytes after the letter */
    switch (lower(d[i - 1])) {
    case 'a': case 'b': case 'c': case 'd': case 'e': case 'f': case 'g': case 'h': case 'j':
    case 'l': case 'o': case 'q': case 'r': case 'u': case 'v': case 'w': case 'y': case 'z':
        return 1;
    case 's':
        return !(pair_at(d, n, i, 'c', 'r') || pair_at(d, n, i, 't', 'y')
                 || pair_at(d, n, i, 'v', 'g') || pair_at(d, n, i, 'e', 'l'));
    case 't':
        return !(pair_at(d, n, i, 'e', 'x') || pair_at(d, n, i, 'e', 'm')
                 || pair_at(d, n, i, 'i', 't'));
    case 'p':
        return !pair_at(d, n, i, 'l', 'a');
    case 'i':
        return !(pair_at(d, n, i, 'f', 'r') || pair_at(d, n, i, 'n', 'p'));
    case 'n':
        return !(pair_at(d, n, i, 'o', 'e') || pair_at(d, n, i, 'o', 'f')
                 || pair_at(d, n, i, 'o', 's'));
    case 'm':
        return !pair_at(d, n, i, 'a', 't');
    case 'x':
        return !pair_at(d, n, i, 'm', 'p');
    case 'k':
        return !pair_at(d, n, i, 'e', 'y');
    default:
        return 0;
    }
}

/* (?:[acdefghijklnopqruvwxyzACDEFGHIJKLNOPQRUVWXYZ]|[bB](?![oO][dD])|[tT](?![eE][mM])
 *   |[sS](?![vV][gG]|[eE][lL])|[mM](?![aA][tT]))
 * at d[i]: whether it matches (it is always one byte long). */
static int
plain_end_letter(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    if (i >= n)
        return 0;
    i++;
    switch (lower(d[i - 1])) {
    case 'a': case 'c': case 'd': case 'e': case 'f': case 'g': case 'h': case 'i': case 'j':
    case 'k': case 'l': case 'n': case 'o': case 'p': case 'q': case 'r': case 'u': case 'v':
    case 'w': case 'x': case 'y': case 'z':
        return 1;
    case 'b':
        return !pair_at(d, n, i, 'o', 'd');
    case 't':
        return !pair_at(d, n, i, 'e', 'm');
    case 's':
        return !(pair_at(d, n, i, 'v', 'g') || pair_at(d, n, i, 'e', 'l'));
    case 'm':
        return !pair_at(d, n, i, 'a', 't');
    default:
        return 0;
    }
}

/* (?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'=<`]++) at d[i]: a value after "=" in a plain tag. */
static Py_ssize_t
plain_value(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    Py_ssize_t q;
    if (is(d, n, i, '"') || is(d, n, i, '\'')) {
        q = find(d, n, i + 1, d[i]);
        return q == NO_MATCH ? NO_MATCH : q + 1;
    }
    if (!lacks(d, n, i, NOT_PLAIN_VALUE))
        return NO_MATCH;
    return skip_lacks(d, n, i + 1, NOT_PLAIN_VALUE);
}

/* (?:[\t\n\f\r ]++[^\t\n\f\r />\"'=<]++(?:=(?:...))?)*+ at d[i]: the attributes of a plain
 * start tag. Possessive: each iteration takes its first match, and the loop stops at the first
 * iteration that fails. The optional "=value" gives way (matches empty) when the value fails. */
static Py_ssize_t
plain_attrs(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    for (;;) {
        Py_ssize_t j = i, v;
        if (!has(d, n, j, WS))
            return i;
        j = skip_has(d, n, j, WS);
        if (!lacks(d, n, j, NOT_PLAIN_NAME))
            return i;
        j = skip_lacks(d, n, j + 1, NOT_PLAIN_NAME);
        if (is(d, n, j, '=') && (v = plain_value(d, n, j + 1)) != NO_MATCH)
            j = v;
        i = j;
    }
}

/* _PLAIN_TAG, at a "<":
 *   <(?:START_LETTER[^\t\n\f\r />\"'=<]*+ ATTRS [\t\n\f\r ]*+/?
 *      |/END_LETTER[^\t\n\f\r />\"'=<]*+[\t\n\f\r ]*+)>
 * The two branches start differently (a letter, a "/"), so at most one can match. */
static Py_ssize_t
plain_tag(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    i++; /* < */
    if (is(d, n, i, '/')) {
        if (!plain_end_letter(d, n, i + 1))
            return NO_MATCH;
        i = skip_lacks(d, n, i + 2, NOT_PLAIN_NAME);
        i = skip_has(d, n, i, WS);
    }
    else {
        if (!plain_start_letter(d, n, i))
            return NO_MATCH;
        i = skip_lacks(d, n, i + 1, NOT_PLAIN_NAME);
        i = plain_attrs(d, n, i);
        i = skip_has(d, n, i, WS);
        if (is(d, n, i, '/'))
            i++;
    }
    return is(d, n, i, '>') ? i + 1 : NO_MATCH;
}

/* --- _ATTRS ------------------------------------------------------------------------------ */

/* (?:\"[^\"]*+\"?|'[^']*+'?|[^\t\n\f\r >\"'][^\t\n\f\r >]*+)? at d[i]: an attribute value.
 * An unterminated quote takes the rest of the data. */
static Py_ssize_t
attr_value(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    Py_ssize_t q;
    if (is(d, n, i, '"') || is(d, n, i, '\'')) {
        q = find(d, n, i + 1, d[i]);
        return q == NO_MATCH ? n : q + 1;
    }
    if (lacks(d, n, i, NOT_VALUE_FIRST))
        return skip_lacks(d, n, i + 1, NOT_VALUE);
    return i;
}

/* (?>[^\t\n\f\r />][^\t\n\f\r />=]*+(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+VALUE?)?) at d[i], where
 * d[i] is known to be in [^\t\n\f\r />]: one attribute. Without an "=" after the name (and
 * optional whitespace), the optional group matches empty and the whitespace is left. */
static Py_ssize_t
attr(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    Py_ssize_t j;
    i = skip_lacks(d, n, i + 1, NOT_ATTR_NAME);
    j = skip_has(d, n, i, WS);
    if (!is(d, n, j, '='))
        return i;
    j = skip_has(d, n, j + 1, WS);
    return attr_value(d, n, j);
}

/* _ATTRS = (?:[\t\n\f\r /]++|(?>ATTR))*+ at d[i]. Every byte but ">" starts one of the two
 * alternatives, so this stops at the tag's ">" (outside quoted values) or the end of data. */
static Py_ssize_t
attrs(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    for (;;) {
        if (has(d, n, i, WS_SLASH))
            i = skip_has(d, n, i, WS_SLASH);
        else if (lacks(d, n, i, NOT_NAME))
            i = attr(d, n, i);
        else
            return i;
    }
}

/* _NAME _ATTRS > at d[i]: _NAME = [A-Za-z][^\t\n\f\r />]*+ */
static Py_ssize_t
name_attrs_gt(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    if (!(i < n && is_letter(d[i])))
        return NO_MATCH;
    i = skip_lacks(d, n, i + 1, NOT_NAME);
    i = attrs(d, n, i);
    return is(d, n, i, '>') ? i + 1 : NO_MATCH;
}

/* --- the other alternatives ---------------------------------------------------------------- */

/* Whether d[i:] is `-->` or `--!>`: --!?> ; returns the end or NO_MATCH. */
static Py_ssize_t
comment_close(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    if (!(is(d, n, i, '-') && is(d, n, i + 1, '-')))
        return NO_MATCH;
    if (is(d, n, i + 2, '>'))
        return i + 3;
    if (is(d, n, i + 2, '!') && is(d, n, i + 3, '>'))
        return i + 4;
    return NO_MATCH;
}

/* _WHOLE_COMMENT = <!--(?:-?>|(?:[^-]++|-(?!-!?>))*+--!?>) at a "<".
 * The loop stops at the first "-" that starts "-->" or "--!>" (or at the end: no match). */
static Py_ssize_t
whole_comment(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    Py_ssize_t end;
    if (!(n - i >= 4 && memcmp(d + i, "<!--", 4) == 0))
        return NO_MATCH;
    i += 4;
    if (is(d, n, i, '>')) /* -?> */
        return i + 1;
    if (is(d, n, i, '-') && is(d, n, i + 1, '>'))
        return i + 2;
    for (;;) { /* (?:[^-]++|-(?!-!?>))*+--!?> */
        i = find(d, n, i, '-');
        if (i == NO_MATCH)
            return NO_MATCH;
        end = comment_close(d, n, i);
        if (end != NO_MATCH)
            return end;
        i++;
    }
}

/* </(?i:script)[\t\n\f\r />] at d[i] */
static int
script_end_at(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    return is(d, n, i, '<') && is(d, n, i + 1, '/') && word_at(d, n, i + 2, "script")
           && has(d, n, i + 8, DELIM);
}

/* _WHOLE_SCRIPT = <(?i:script)(?=[\t\n\f\r />]) _ATTRS >
 *                 (?:[^<]++|<(?!!--|/(?i:script)[\t\n\f\r />]))*+
 *                 (?=</(?i:script)[\t\n\f\r />])
 * at a "<". It ends before the end tag; it fails when "<!--" comes first or the data ends. */
static Py_ssize_t
whole_script(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    if (!(word_at(d, n, i + 1, "script") && has(d, n, i + 7, DELIM)))
        return NO_MATCH;
    i = attrs(d, n, i + 7);
    if (!is(d, n, i, '>'))
        return NO_MATCH;
    i++;
    for (;;) {
        i = find(d, n, i, '<');
        if (i == NO_MATCH)
            return NO_MATCH;
        if (n - i >= 4 && memcmp(d + i, "<!--", 4) == 0)
            return NO_MATCH;
        if (script_end_at(d, n, i))
            return i;
        i++;
    }
}

/* <(?=[^A-Za-z!?/]) at a "<": a "<" that starts no tag (not at the end of data). */
static Py_ssize_t
lone_lt(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    unsigned char c;
    if (i + 1 >= n)
        return NO_MATCH;
    c = d[i + 1];
    return (is_letter(c) || c == '!' || c == '?' || c == '/') ? NO_MATCH : i + 1;
}

/* <(?!(?i:START)[\t\n\f\r />])_NAME _ATTRS> at a "<": a start tag with a boring name. */
static Py_ssize_t
start_tag(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, int in_select)
{
    if (interesting_at(d, n, i + 1, in_select ? START_NAMES_IN_SELECT : START_NAMES))
        return NO_MATCH;
    return name_attrs_gt(d, n, i + 1);
}

/* </(?!(?i:END)[\t\n\f\r />])_NAME _ATTRS> at a "<": an end tag with a boring name. */
static Py_ssize_t
end_tag(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    if (!is(d, n, i + 1, '/') || interesting_at(d, n, i + 2, END_NAMES))
        return NO_MATCH;
    return name_attrs_gt(d, n, i + 2);
}

/* --- the whole pattern ------------------------------------------------------------------- */

/* (?:[^<]*+ _PLAIN_TAG | [^<]++ | _WHOLE_COMMENT (with comments) | _WHOLE_SCRIPT
 *   | <(?=[^A-Za-z!?/]) | <(?!START...)_NAME _ATTRS> | </(?!END...)_NAME _ATTRS>)*+
 *
 * Text is taken in one memchr: "[^<]*+ _PLAIN_TAG" then "[^<]++" take the same text whether
 * or not the plain tag follows, and the next iteration starts at the "<" either way. */
static Py_ssize_t
boring(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, int in_select, int comments)
{
    Py_ssize_t end;
    while (i < n) {
        if (d[i] != '<') {
            end = find(d, n, i, '<');
            i = end == NO_MATCH ? n : end;
            continue;
        }
        end = plain_tag(d, n, i);
        if (end == NO_MATCH && comments)
            end = whole_comment(d, n, i);
        if (end == NO_MATCH)
            end = whole_script(d, n, i);
        if (end == NO_MATCH)
            end = lone_lt(d, n, i);
        if (end == NO_MATCH)
            end = start_tag(d, n, i, in_select);
        if (end == NO_MATCH)
            end = end_tag(d, n, i);
        if (end == NO_MATCH)
            break;
        i = end;
    }
    return i;
}

/* --- module ------------------------------------------------------------------------------ */

PyDoc_STRVAR(skip_boring_doc,
"skip_boring(data, pos, in_select, comments, /)\n"
"--\n"
"\n"
"Where the injector's boring markup starting at pos ends.\n"
"\n"
"Returns exactly\n"
"(_BORING_IN_SELECT if in_select else _BORING)[bool(comments)].match(data, pos).end()\n"
"from compliance.inject, with pos clamped to [0, len(data)] as re does. data is any\n"
"bytes-like object.");

static PyObject *
skip_boring(PyObject *module, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, end;
    int in_select, comments;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*npp:skip_boring", &view, &pos, &in_select, &comments))
        return NULL;
    if (pos < 0)
        pos = 0;
    if (pos > view.len)
        pos = view.len;
    end = boring((const unsigned char *)view.buf, view.len, pos, in_select, comments);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(end);
}

static PyMethodDef methods[] = {
    {"skip_boring", skip_boring, METH_VARARGS, skip_boring_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(module_doc,
"C version of the HTML injector's scan over boring markup (compliance.inject._BORING).\n"
"\n"
"Optional: compliance.inject uses the regular expressions when this module is missing.");

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "compliance._cinject", /* m_name */
    module_doc,            /* m_doc */
    0,                     /* m_size */
    methods,               /* m_methods */
    slots,                 /* m_slots */
    NULL,                  /* m_traverse */
    NULL,                  /* m_clear */
    NULL,                  /* m_free */
};

PyMODINIT_FUNC
PyInit__cinject(void)
{
    return PyModuleDef_Init(&module_def);
}
