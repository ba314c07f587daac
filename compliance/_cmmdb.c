/*
 * compliance._cmmdb: the few fields a geolocator needs from a MaxMind DB file, read with the
 * system libmaxminddb (link with -lmaxminddb).
 *
 * maxminddb's Reader.get() decodes a whole record (a City record carries names in eight
 * languages) although compliance.geo only reads country.iso_code,
 * country.is_in_european_union and subdivisions[*].iso_code. MMDB_aget_value() decodes only
 * the values on the requested path (it skips the others), so a lookup here costs less than
 * a bare maxminddb get().
 *
 * Safety: libmaxminddb bounds-checks every read of the search tree and of the data section
 * and reports corruption as a status code; every status code is checked here, and a value
 * is used only when it has data of the expected type. Corrupt data raises ValueError. What
 * libmaxminddb does not bound on its own, this module bounds before calling it: the
 * nesting of the maps and arrays it searches, in the data section and in the metadata
 * (walk_nesting, metadata_too_deep), and the length of the subdivisions array
 * (MAX_SUBDIVISIONS).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <maxminddb.h>

/* Subdivisions read per record. MaxMind records hold at most two or three; each entry is
 * found by walking the array from its start (libmaxminddb has no array iterator), so the
 * cost grows with the square of the count, and a crafted array of millions of tiny entries
 * would take hours. A longer array is reported as corrupt data (ValueError). */
#define MAX_SUBDIVISIONS 64

typedef struct {
    PyObject_HEAD
    /* The open database, NULL before __init__ succeeds and after close(). On the heap so
     * that MMDB_open() can run without the GIL and without touching a visible object. */
    MMDB_s *mmdb;
    /* A database closed while a lookup was running on it (see lookup()): released when the
     * last such lookup returns. */
    MMDB_s *closing;
    /* Lookups in progress on this reader. Only ever above 1 when a lookup re-enters through
     * a finalizer run by the garbage collector; all changes happen with the GIL held. */
    int busy;
    int ip_version;
    PyObject *database_type; /* str, or NULL before the first successful open */
    PyObject *path;          /* str, for messages; NULL before __init__ */
} ReaderObject;

/* --- helpers ---------------------------------------------------------------------------- */

static void free_mmdb(MMDB_s *mmdb)
{
    if (mmdb != NULL) {
        MMDB_close(mmdb);
        PyMem_RawFree(mmdb);
    }
}

/* ValueError "<path>: <what> (<libmaxminddb's text>)"; returns NULL. */
static PyObject *corrupt(ReaderObject *self, const char *what, int status)
{
    PyErr_Format(PyExc_ValueError, "%S: %s (%s)", self->path ? self->path : Py_None, what,
                 MMDB_strerror(status));
    return NULL;
}

/* --- nesting guard --------------------------------------------------------------------- */

/* libmaxminddb before the fix upstream calls "deep nesting" (1.7.1, Debian 12's, is one)
 * skips the map entries and array elements before the one a path asks for with a recursive
 * function that has no depth limit: a crafted record nested a few hundred thousand levels
 * deep overflows the C stack (a segmentation fault, reproduced in tests/test_cmmdb.py), and
 * a few thousand levels do in a thread with a small stack (musl's default is 128 KiB).
 * Before libmaxminddb searches a map or an array, walk_nesting() walks it the way that
 * skip does (inline values only, pointers not followed) with a bounded loop, and rejects
 * nesting deeper than MAX_NESTING, the limit the MaxMind DB specification recommends to
 * readers. MaxMind's own databases nest less than five levels deep. MMDB_open() searches
 * the metadata the same way: metadata_too_deep() checks it first. */
#define MAX_NESTING 512

/* 0 when the value at offset in mem[0:size] nests at most MAX_NESTING containers deep, -1
 * when it nests deeper. Reads only inside mem[0:size]: a value that runs past the end stops
 * the walk, and libmaxminddb reports that itself when it gets there. */
static int walk_nesting(const uint8_t *mem, uint64_t size, uint64_t offset)
{
    uint32_t remaining[MAX_NESTING + 1]; /* values still to walk at each level */
    int depth = 0;
    uint64_t at = offset;
    remaining[0] = 1;
    while (depth >= 0) {
        if (remaining[depth] == 0) {
            depth--;
            continue;
        }
        remaining[depth]--;
        if (at >= size) {
            break;
        }
        uint8_t ctrl = mem[at++];
        uint32_t type = ctrl >> 5;
        if (type == 0) { /* extended type: 7 + the next byte, as libmaxminddb reads it */
            if (at >= size) {
                break;
            }
            type = 7 + (uint32_t)mem[at++];
        }
        if (type == MMDB_DATA_TYPE_POINTER) { /* 1 to 4 bytes, not followed */
            at += ((ctrl >> 3) & 3) + 1;
            continue;
        }
        uint32_t count = ctrl & 31;
        if (count >= 29) {
            uint32_t extra = count - 28;
            if (at + extra > size) {
                break;
            }
            if (count == 29) {
                count = 29 + (uint32_t)mem[at];
            }
            else if (count == 30) {
                count = 285 + ((uint32_t)mem[at] << 8 | (uint32_t)mem[at + 1]);
            }
            else {
                count = 65821 + ((uint32_t)mem[at] << 16 | (uint32_t)mem[at + 1] << 8 |
                                 (uint32_t)mem[at + 2]);
            }
            at += extra;
        }
        if (type == MMDB_DATA_TYPE_MAP || type == MMDB_DATA_TYPE_ARRAY) {
            if (count == 0) {
                continue;
            }
            if (depth == MAX_NESTING) {
                return -1;
            }
            /* A map holds a key and a value per entry; count < 2**25, so no overflow. */
            remaining[++depth] = type == MMDB_DATA_TYPE_MAP ? 2 * count : count;
        }
        else if (type != MMDB_DATA_TYPE_BOOLEAN) { /* a boolean's "size" is its value */
            at += count;
        }
    }
    return 0;
}

/* The metadata section as MMDB_open() finds it: after the last marker in the last 128 KiB
 * of the file. */
#define METADATA_MARKER "\xab\xcd\xefMaxMind.com"
#define METADATA_MARKER_SIZE 14
#define METADATA_BLOCK_MAX_SIZE 131072

/* 1 when the metadata of the file nests deeper than MAX_NESTING, else 0 (also when the file
 * cannot be read or has no metadata: MMDB_open() reports that). Runs without the GIL. */
static int metadata_too_deep(const char *filename)
{
    int too_deep = 0;
    uint8_t *block = NULL;
    FILE *file = fopen(filename, "rb");
    if (file == NULL || fseek(file, 0, SEEK_END) != 0) {
        goto done;
    }
    long size = ftell(file);
    if (size <= 0) {
        goto done;
    }
    long length = size < METADATA_BLOCK_MAX_SIZE ? size : METADATA_BLOCK_MAX_SIZE;
    block = PyMem_RawMalloc((size_t)length);
    if (block == NULL || fseek(file, size - length, SEEK_SET) != 0 ||
        fread(block, 1, (size_t)length, file) != (size_t)length) {
        goto done;
    }
    long start = -1;
    for (long at = 0; at + METADATA_MARKER_SIZE <= length; at++) {
        if (block[at] == 0xab && memcmp(block + at, METADATA_MARKER, METADATA_MARKER_SIZE) == 0) {
            start = at + METADATA_MARKER_SIZE;
        }
    }
    if (start < 0 || start >= length) {
        goto done;
    }
    const uint8_t *meta = block + start;
    uint64_t meta_size = (uint64_t)(length - start);
    too_deep = walk_nesting(meta, meta_size, 0) < 0;
    /* MMDB_open() follows a pointer at the start of the metadata (and no further). */
    uint8_t ctrl = meta[0];
    uint32_t bytes = ((ctrl >> 3) & 3) + 1;
    if (!too_deep && ctrl >> 5 == MMDB_DATA_TYPE_POINTER && 1 + bytes <= meta_size) {
        const uint8_t *p = meta + 1;
        uint64_t high = ctrl & 7;
        uint64_t target;
        if (bytes == 1) {
            target = (high << 8) + p[0];
        }
        else if (bytes == 2) {
            target = 2048 + (high << 16) + ((uint64_t)p[0] << 8) + p[1];
        }
        else if (bytes == 3) {
            target = 526336 + (high << 24) + ((uint64_t)p[0] << 16) + ((uint64_t)p[1] << 8) +
                     p[2];
        }
        else {
            target = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        }
        too_deep = walk_nesting(meta, meta_size, target) < 0;
    }
done:
    PyMem_RawFree(block);
    if (file != NULL) {
        fclose(file);
    }
    return too_deep;
}

/* --- lookups in a record ----------------------------------------------------------------- */

/* MMDB_aget_value() with the outcome sorted: 1 found (data in *out), 0 the path does not
 * exist in this record, -1 error (ValueError set). When the value found is a map or an
 * array, its nesting is checked (see walk_nesting) so that it can be searched next. */
static int get_value(ReaderObject *self, MMDB_entry_s *entry, const char *const *path,
                     MMDB_entry_data_s *out)
{
    int status = MMDB_aget_value(entry, out, path);
    if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR) {
        return 0;
    }
    if (status != MMDB_SUCCESS) {
        corrupt(self, "corrupt data", status);
        return -1;
    }
    if (!out->has_data) {
        return 0;
    }
    if ((out->type == MMDB_DATA_TYPE_MAP || out->type == MMDB_DATA_TYPE_ARRAY) &&
        walk_nesting(entry->mmdb->data_section, entry->mmdb->data_section_size, out->offset) <
            0) {
        PyErr_Format(PyExc_ValueError,
                     "%S: corrupt data (nested more than %d levels deep)",
                     self->path, MAX_NESTING);
        return -1;
    }
    return 1;
}

/* The UTF-8 string at path below entry, or None when absent or of another type. New
 * reference; NULL with an exception set on error (invalid UTF-8: UnicodeDecodeError, a
 * ValueError). */
static PyObject *get_string(ReaderObject *self, MMDB_entry_s *entry, const char *const *path)
{
    MMDB_entry_data_s data;
    int found = get_value(self, entry, path, &data);
    if (found < 0) {
        return NULL;
    }
    if (!found || data.type != MMDB_DATA_TYPE_UTF8_STRING) {
        Py_RETURN_NONE;
    }
    return PyUnicode_DecodeUTF8(data.utf8_string, (Py_ssize_t)data.data_size, NULL);
}

/* The subdivisions/N/iso_code strings of a record, in order, as a tuple. Choice: entries
 * whose iso_code is missing or not a string (or that are not maps) are skipped, so the
 * result holds only strings; a record without a subdivisions array gives (). */
static PyObject *get_subdivisions(ReaderObject *self, MMDB_entry_s *record)
{
    static const char *const path_array[] = {"subdivisions", NULL};
    static const char *const path_code[] = {"iso_code", NULL};
    MMDB_entry_data_s data;
    int found = get_value(self, record, path_array, &data);
    if (found < 0) {
        return NULL;
    }
    if (!found || data.type != MMDB_DATA_TYPE_ARRAY || data.data_size == 0) {
        return PyTuple_New(0);
    }
    uint32_t size = data.data_size;
    if (size > MAX_SUBDIVISIONS) {
        PyErr_Format(PyExc_ValueError,
                     "%S: corrupt data (a subdivisions array of %lu entries; at most %d are "
                     "read)",
                     self->path, (unsigned long)size, MAX_SUBDIVISIONS);
        return NULL;
    }
    /* Look the entries up from the array itself, not from the record again. */
    MMDB_entry_s array = {.mmdb = record->mmdb, .offset = data.offset};
    char index[16];
    const char *const path_index[] = {index, NULL};
    PyObject *codes[MAX_SUBDIVISIONS];
    Py_ssize_t count = 0;
    for (uint32_t i = 0; i < size; i++) {
        PyOS_snprintf(index, sizeof(index), "%u", (unsigned int)i);
        found = get_value(self, &array, path_index, &data);
        if (found < 0) {
            goto error;
        }
        if (!found || data.type != MMDB_DATA_TYPE_MAP) {
            continue;
        }
        MMDB_entry_s subdivision = {.mmdb = record->mmdb, .offset = data.offset};
        PyObject *code = get_string(self, &subdivision, path_code);
        if (code == NULL) {
            goto error;
        }
        if (code == Py_None) {
            Py_DECREF(code);
            continue;
        }
        codes[count++] = code;
    }
    PyObject *result = PyTuple_New(count);
    if (result == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyTuple_SET_ITEM(result, i, codes[i]); /* steals the reference */
    }
    return result;
error:
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_DECREF(codes[i]);
    }
    return NULL;
}

/* --- Reader ----------------------------------------------------------------------------- */

PyDoc_STRVAR(Reader_doc,
"Reader(path)\n"
"--\n"
"\n"
"A MaxMind DB file opened with libmaxminddb (memory-mapped) for location lookups.\n"
"\n"
"Raises OSError (with errno and the file name) when the file cannot be read and\n"
"ValueError naming the file when it is not a valid MaxMind DB file.");

static int Reader_init(ReaderObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", NULL};
    PyObject *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:Reader", kwlist, PyUnicode_FSDecoder,
                                     &path)) {
        return -1;
    }
    if (self->mmdb != NULL || self->closing != NULL) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_ValueError, "Reader is already open");
        return -1;
    }
    Py_XSETREF(self->path, path);

    PyObject *encoded = PyUnicode_EncodeFSDefault(path);
    if (encoded == NULL) {
        return -1;
    }
    MMDB_s *mmdb = PyMem_RawCalloc(1, sizeof(MMDB_s));
    if (mmdb == NULL) {
        Py_DECREF(encoded);
        PyErr_NoMemory();
        return -1;
    }
    int status;
    int saved_errno;
    int too_deep;
    Py_BEGIN_ALLOW_THREADS
    too_deep = metadata_too_deep(PyBytes_AS_STRING(encoded));
    errno = 0;
    status = too_deep ? MMDB_INVALID_METADATA_ERROR
                      : MMDB_open(PyBytes_AS_STRING(encoded), MMDB_MODE_MMAP, mmdb);
    saved_errno = errno;
    Py_END_ALLOW_THREADS

    if (status != MMDB_SUCCESS) {
        PyMem_RawFree(mmdb); /* MMDB_open frees what it allocated on failure */
        if (status == MMDB_OUT_OF_MEMORY_ERROR) {
            PyErr_NoMemory();
        }
        else if (status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR) {
            /* open() succeeds on a directory and on an empty file, and mmap() then fails
             * with ENODEV or EINVAL: say what is really wrong. */
            struct stat st;
            int found = status == MMDB_IO_ERROR && stat(PyBytes_AS_STRING(encoded), &st) == 0;
            if (found && S_ISDIR(st.st_mode)) {
                saved_errno = EISDIR;
            }
            else if (found && S_ISREG(st.st_mode) && st.st_size == 0) {
                Py_DECREF(encoded);
                PyErr_Format(PyExc_ValueError,
                             "%R is not a valid MaxMind DB file (the file is empty)", path);
                return -1;
            }
            if (saved_errno == 0) {
                saved_errno = EIO;
            }
            /* OSError(errno, text, filename) picks the subclass (FileNotFoundError, ...). */
            PyObject *text = PyUnicode_FromFormat("%s: %s", MMDB_strerror(status),
                                                  strerror(saved_errno));
            if (text != NULL) {
                PyObject *exc = PyObject_CallFunction(PyExc_OSError, "iOO", saved_errno, text,
                                                      path);
                Py_DECREF(text);
                if (exc != NULL) {
                    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                    Py_DECREF(exc);
                }
            }
        }
        else if (too_deep) {
            PyErr_Format(PyExc_ValueError,
                         "%R is not a valid MaxMind DB file (metadata nested more than %d "
                         "levels deep)",
                         path, MAX_NESTING);
        }
        else {
            PyErr_Format(PyExc_ValueError, "%R is not a valid MaxMind DB file (%s)", path,
                         MMDB_strerror(status));
        }
        Py_DECREF(encoded);
        return -1;
    }
    Py_DECREF(encoded);
    if (self->mmdb != NULL || self->closing != NULL) {
        /* Another thread's __init__ opened this reader while the GIL was released. */
        free_mmdb(mmdb);
        PyErr_SetString(PyExc_ValueError, "Reader is already open");
        return -1;
    }

    const char *type = mmdb->metadata.database_type;
    PyObject *database_type =
        PyUnicode_DecodeUTF8(type ? type : "", type ? (Py_ssize_t)strlen(type) : 0, "replace");
    if (database_type == NULL) {
        free_mmdb(mmdb);
        return -1;
    }
    Py_XSETREF(self->database_type, database_type);
    self->ip_version = mmdb->metadata.ip_version;
    self->mmdb = mmdb;
    return 0;
}

PyDoc_STRVAR(lookup_doc,
"lookup($self, packed, /)\n"
"--\n"
"\n"
"Look up a packed address: 4 bytes (IPv4) or 16 bytes (IPv6), as from socket.inet_pton.\n"
"\n"
"Returns None when the database has no record for the address, else\n"
"(prefix_len, country_iso_code, is_in_european_union, subdivision_iso_codes):\n"
"prefix_len as maxminddb's Reader.get_with_prefix_len() reports it (for an IPv4\n"
"address in an IPv6 database, relative to IPv4; 0 when the address falls in an IPv6\n"
"network wider than ::/96); country_iso_code the string at country/iso_code or None;\n"
"is_in_european_union the boolean at country/is_in_european_union, False when absent\n"
"or not a boolean; subdivision_iso_codes the subdivisions/N/iso_code strings in order,\n"
"skipping entries without a string iso_code.\n"
"\n"
"Raises TypeError for a non-bytes argument, ValueError for another length, for an IPv6\n"
"address in an IPv4-only database, for corrupt data and after close().");

static PyObject *Reader_lookup(ReaderObject *self, PyObject *packed)
{
    /* The GIL is held for the whole lookup (it is not released: a lookup takes about a
     * microsecond), so close() from another thread cannot run in the middle of one and
     * unmap the file under it. Python code can still run on this thread mid-lookup: a
     * tuple allocation may start the garbage collector, whose finalizers may call close()
     * or lookup() on this reader. For that case close() only detaches the database while
     * busy > 0, and the outermost lookup releases it on its way out. */
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } address;
    memset(&address, 0, sizeof(address));

    Py_buffer view;
    if (PyObject_GetBuffer(packed, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError,
                     "lookup() argument must be a bytes-like object (a packed address), not %s",
                     Py_TYPE(packed)->tp_name);
        return NULL;
    }
    if (view.len == 4) {
        address.v4.sin_family = AF_INET;
        memcpy(&address.v4.sin_addr, view.buf, 4);
    }
    else if (view.len == 16) {
        address.v6.sin6_family = AF_INET6;
        memcpy(&address.v6.sin6_addr, view.buf, 16);
    }
    else {
        Py_ssize_t length = view.len;
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError,
                     "a packed address is 4 bytes (IPv4) or 16 bytes (IPv6), not %zd", length);
        return NULL;
    }
    PyBuffer_Release(&view);

    MMDB_s *mmdb = self->mmdb;
    if (mmdb == NULL) {
        PyErr_SetString(PyExc_ValueError, "lookup on a closed (or unopened) Reader");
        return NULL;
    }

    int error = MMDB_SUCCESS;
    MMDB_lookup_result_s result = MMDB_lookup_sockaddr(mmdb, &address.sa, &error);
    if (error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR) {
        PyErr_Format(PyExc_ValueError,
                     "%S: cannot look up an IPv6 address in an IPv4-only database", self->path);
        return NULL;
    }
    if (error != MMDB_SUCCESS) {
        return corrupt(self, "corrupt search tree", error);
    }
    if (!result.found_entry) {
        Py_RETURN_NONE;
    }

    /* Like maxminddb: an IPv4 address in an IPv6 database reports its prefix relative to
     * IPv4 (netmask - 96), or 0 when the search ended above ::/96, where an IPv6 network
     * wider than the IPv4 subtree holds the address. */
    int prefix_len = result.netmask;
    if (address.sa.sa_family == AF_INET && mmdb->metadata.ip_version == 6) {
        prefix_len = prefix_len >= 96 ? prefix_len - 96 : 0;
    }

    static const char *const path_self[] = {NULL};
    static const char *const path_country[] = {"country", NULL};
    static const char *const path_code[] = {"iso_code", NULL};
    static const char *const path_eu[] = {"is_in_european_union", NULL};
    PyObject *code = NULL;
    PyObject *subdivisions = NULL;
    PyObject *answer = NULL;
    MMDB_entry_data_s data;
    int eu = 0;

    self->busy++;
    /* The record itself (through a pointer, if it is one), checked before it is searched. */
    int found = get_value(self, &result.entry, path_self, &data);
    if (found < 0) {
        goto done;
    }
    if (found && data.type == MMDB_DATA_TYPE_MAP) {
        MMDB_entry_s record = {.mmdb = mmdb, .offset = data.offset};
        /* Find the country map once, then read its two keys from it. */
        found = get_value(self, &record, path_country, &data);
        if (found < 0) {
            goto done;
        }
        if (found && data.type == MMDB_DATA_TYPE_MAP) {
            MMDB_entry_s country = {.mmdb = mmdb, .offset = data.offset};
            code = get_string(self, &country, path_code);
            if (code == NULL) {
                goto done;
            }
            found = get_value(self, &country, path_eu, &data);
            if (found < 0) {
                goto done;
            }
            eu = found && data.type == MMDB_DATA_TYPE_BOOLEAN && data.boolean;
        }
        subdivisions = get_subdivisions(self, &record);
    }
    else {
        subdivisions = PyTuple_New(0); /* a record that is not a map has none of the keys */
    }
    if (subdivisions == NULL) {
        goto done;
    }
    if (code == NULL) {
        code = Py_None;
        Py_INCREF(code);
    }
    /* Every read of the file is done; only Python objects are built from here on. */
    answer = Py_BuildValue("(iOOO)", prefix_len, code, eu ? Py_True : Py_False, subdivisions);
done:
    Py_XDECREF(code);
    Py_XDECREF(subdivisions);
    if (--self->busy == 0 && self->closing != NULL) {
        MMDB_s *closing = self->closing;
        self->closing = NULL;
        free_mmdb(closing);
    }
    return answer;
}

PyDoc_STRVAR(close_doc,
"close($self, /)\n"
"--\n"
"\n"
"Close the database (unmap the file). Safe to call more than once; lookups raise\n"
"ValueError afterwards.");

static PyObject *Reader_close(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    MMDB_s *mmdb = self->mmdb;
    self->mmdb = NULL;
    if (mmdb != NULL) {
        if (self->busy > 0) {
            self->closing = mmdb; /* a lookup on this thread is still reading it */
        }
        else {
            free_mmdb(mmdb);
        }
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(enter_doc, "__enter__($self, /)\n--\n\nReturn the reader itself.");

static PyObject *Reader_enter(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->mmdb == NULL) {
        PyErr_SetString(PyExc_ValueError, "cannot enter a closed (or unopened) Reader");
        return NULL;
    }
    Py_INCREF(self);
    return (PyObject *)self;
}

PyDoc_STRVAR(exit_doc, "__exit__($self, *exc_info, /)\n--\n\nClose the reader.");

static PyObject *Reader_exit(ReaderObject *self, PyObject *Py_UNUSED(args))
{
    return Reader_close(self, NULL);
}

static void Reader_dealloc(ReaderObject *self)
{
    /* No lookup can be running: a running lookup holds a reference to self. */
    free_mmdb(self->mmdb);
    free_mmdb(self->closing);
    Py_CLEAR(self->database_type);
    Py_CLEAR(self->path);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Reader_get_ip_version(ReaderObject *self, void *Py_UNUSED(closure))
{
    if (self->database_type == NULL) {
        PyErr_SetString(PyExc_AttributeError, "ip_version: the Reader was never opened");
        return NULL;
    }
    return PyLong_FromLong(self->ip_version);
}

static PyObject *Reader_get_database_type(ReaderObject *self, void *Py_UNUSED(closure))
{
    if (self->database_type == NULL) {
        PyErr_SetString(PyExc_AttributeError, "database_type: the Reader was never opened");
        return NULL;
    }
    Py_INCREF(self->database_type);
    return self->database_type;
}

static PyObject *Reader_get_closed(ReaderObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->mmdb == NULL);
}

static PyMethodDef Reader_methods[] = {
    {"lookup", (PyCFunction)Reader_lookup, METH_O, lookup_doc},
    {"close", (PyCFunction)Reader_close, METH_NOARGS, close_doc},
    {"__enter__", (PyCFunction)Reader_enter, METH_NOARGS, enter_doc},
    {"__exit__", (PyCFunction)Reader_exit, METH_VARARGS, exit_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Reader_getset[] = {
    {"ip_version", (getter)Reader_get_ip_version, NULL,
     "The metadata's ip_version: 4 or 6 (read-only).", NULL},
    {"database_type", (getter)Reader_get_database_type, NULL,
     "The metadata's database_type, e.g. 'GeoIP2-City' (read-only).", NULL},
    {"closed", (getter)Reader_get_closed, NULL,
     "True before a successful open and after close() (read-only).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Reader_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "compliance._cmmdb.Reader",
    .tp_basicsize = sizeof(ReaderObject),
    .tp_itemsize = 0,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Reader_doc,
    .tp_methods = Reader_methods,
    .tp_getset = Reader_getset,
    .tp_init = (initproc)Reader_init,
    .tp_new = PyType_GenericNew,
};

/* --- module ----------------------------------------------------------------------------- */

PyDoc_STRVAR(module_doc,
"Country, EU flag and subdivisions from a MaxMind DB file, read with libmaxminddb.\n"
"\n"
"Reader(path).lookup(packed) decodes only country/iso_code,\n"
"country/is_in_european_union and subdivisions/N/iso_code of the record, where\n"
"maxminddb's Reader.get() decodes all of it.");

static struct PyModuleDef cmmdb_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "compliance._cmmdb",
    .m_doc = module_doc,
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__cmmdb(void)
{
    if (PyType_Ready(&Reader_Type) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&cmmdb_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&Reader_Type);
    if (PyModule_AddObject(module, "Reader", (PyObject *)&Reader_Type) < 0) {
        Py_DECREF(&Reader_Type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
