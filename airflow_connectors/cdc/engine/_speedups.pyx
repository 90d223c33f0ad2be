# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, infer_types=True
"""The compiled hot path of the stream (optional): pgoutput changes decoded into rows, rows into COPY lines and keys.

Every function does exactly what its pure-Python original does (``pgoutput.decode``, ``copy_format.binary_line``,
``copy_format.copy_line``, ``copy_format.staged_text_line``, ``last_change.keyed_change``) and returns equal objects,
one allocation per value and one per line; ``_accel`` picks this module when it was built. The pure code stays the
reference: messages other than Insert / Update / Delete are handed to it, and tests compare the two on random input.

Rows, keys and buffered (op, row) pairs are taken off the garbage collector's lists as they are made: they hold only
bytes, None and ``UNCHANGED``, so they can never be part of a reference cycle, and a big transaction keeps a batch
of them alive, which the collector would otherwise walk again and again (about a tenth of the stream's CPU).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int16_t, int32_t, uint32_t
from libc.string cimport memcpy

from airflow_connectors.cdc.engine import pgoutput


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void* op)
    PyObject* PyDict_SetDefault(object d, object key, object default) except NULL  # a borrowed reference

cdef object _UNCHANGED = pgoutput.UNCHANGED
cdef object _Insert = pgoutput.Insert
cdef object _Update = pgoutput.Update
cdef object _Delete = pgoutput.Delete
cdef object _pure_decode = pgoutput.decode
cdef object _pure_decode_streamed = pgoutput.decode_streamed
cdef object _new = object.__new__


# -- decoding -------------------------------------------------------------------------------------------------------
cdef inline uint32_t _u32(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]


cdef inline int _truncated() except -1:
    raise ValueError("truncated pgoutput message")


cdef tuple _tuple(const unsigned char* data, Py_ssize_t size, Py_ssize_t* at):
    """The TupleData at ``at[0]``; moves ``at[0]`` past it."""
    cdef Py_ssize_t pos = at[0]
    cdef Py_ssize_t i, count, length
    cdef unsigned char kind
    cdef object value
    if pos + 2 > size:
        _truncated()
    count = <int16_t>((data[pos] << 8) | data[pos + 1])
    pos += 2
    if count < 0:
        raise ValueError("negative column count in pgoutput tuple")
    row = PyTuple_New(count)
    for i in range(count):
        if pos >= size:
            _truncated()
        kind = data[pos]
        pos += 1
        if kind == 0x6E:  # 'n'
            value = None
        elif kind == 0x75:  # 'u'
            value = _UNCHANGED
        else:  # 't' or 'b'
            if pos + 4 > size:
                _truncated()
            length = <int32_t>_u32(data + pos)
            pos += 4
            if length < 0 or pos + length > size:
                _truncated()
            value = PyBytes_FromStringAndSize(<const char*>data + pos, length)
            pos += length
        Py_INCREF(value)
        PyTuple_SET_ITEM(row, i, value)
    PyObject_GC_UnTrack(<void*>row)
    at[0] = pos
    return row


cdef object _change(const unsigned char* data, Py_ssize_t size, Py_ssize_t skip):
    """An Insert / Update / Delete whose relid starts ``skip`` bytes after the kind byte; None for other kinds."""
    cdef Py_ssize_t pos
    cdef unsigned char kind
    if size < 6 + skip:
        return None
    kind = data[0]
    data += skip  # from here on, offsets are those of protocol 1
    size -= skip
    relid = _u32(data + 1)
    if kind == 0x49:  # 'I': relid, 'N', new tuple
        pos = 6
        change = _new(_Insert)
        change.relid = relid
        change.new = _tuple(data, size, &pos)
        return change
    if kind == 0x55:  # 'U': relid, optional 'K'/'O' old tuple, 'N', new tuple
        pos = 5
        old = None
        old_is_key = False
        if data[pos] == 0x4B or data[pos] == 0x4F:
            old_is_key = data[pos] == 0x4B
            pos += 1
            old = _tuple(data, size, &pos)
        pos += 1  # the 'N'
        new = _tuple(data, size, &pos)
        change = _new(_Update)  # its fields set here: the dataclass's __init__ is a Python call per change
        change.relid = relid
        change.old = old
        change.old_is_key = old_is_key
        change.new = new
        return change
    if kind == 0x44:  # 'D': relid, 'K'/'O', old tuple
        pos = 6
        change = _new(_Delete)
        change.relid = relid
        change.old = _tuple(data, size, &pos)
        change.old_is_key = data[5] == 0x4B
        return change
    return None


def decode(buf):
    """``pgoutput.decode``, with Insert / Update / Delete decoded here."""
    if type(buf) is not bytes:
        return _pure_decode(buf)
    change = _change(<const unsigned char*>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf), 0)
    return _pure_decode(buf) if change is None else change


def decode_streamed(buf):
    """``pgoutput.decode_streamed``: the message read in place, past its xid (no copy of it without)."""
    if type(buf) is not bytes:
        return _pure_decode_streamed(buf)
    change = _change(<const unsigned char*>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf), 4)
    return _pure_decode_streamed(buf) if change is None else change


# -- COPY lines -----------------------------------------------------------------------------------------------------
cdef inline unsigned char* _put_u32(unsigned char* out, uint32_t value) noexcept nogil:
    out[0] = <unsigned char>(value >> 24)
    out[1] = <unsigned char>(value >> 16)
    out[2] = <unsigned char>(value >> 8)
    out[3] = <unsigned char>value
    return out + 4


def binary_line(str op, tuple row, bytes field_count):
    """``copy_format.binary_line``: op, each value with its length (-1: NULL), then one "unchanged" flag per value."""
    cdef bytes op_bytes = op.encode()
    cdef Py_ssize_t n = len(row)
    cdef Py_ssize_t i, length
    cdef Py_ssize_t total = PyBytes_GET_SIZE(field_count) + 4 + PyBytes_GET_SIZE(op_bytes) + 9 * n
    cdef object value
    for i in range(n):
        value = row[i]
        if value is not None and value is not _UNCHANGED:
            if type(value) is not bytes:
                raise TypeError(f"a row value must be bytes, not {type(value).__name__}")
            total += PyBytes_GET_SIZE(value)
    line = PyBytes_FromStringAndSize(NULL, total)
    cdef unsigned char* out = <unsigned char*>PyBytes_AS_STRING(line)
    memcpy(out, PyBytes_AS_STRING(field_count), PyBytes_GET_SIZE(field_count))
    out += PyBytes_GET_SIZE(field_count)
    out = _put_u32(out, <uint32_t>PyBytes_GET_SIZE(op_bytes))
    memcpy(out, PyBytes_AS_STRING(op_bytes), PyBytes_GET_SIZE(op_bytes))
    out += PyBytes_GET_SIZE(op_bytes)
    for i in range(n):
        value = row[i]
        if value is None or value is _UNCHANGED:
            out = _put_u32(out, 0xFFFFFFFF)
        else:
            length = PyBytes_GET_SIZE(value)
            out = _put_u32(out, <uint32_t>length)
            memcpy(out, PyBytes_AS_STRING(value), length)
            out += length
    for i in range(n):
        out = _put_u32(out, 1)
        out[0] = 1 if row[i] is _UNCHANGED else 0
        out += 1
    return line


cdef inline Py_ssize_t _escaped_size(object value) except -1:
    """The size of ``value`` in COPY text format (``\\N`` for NULL and unchanged)."""
    if value is None or value is _UNCHANGED:
        return 2
    if type(value) is not bytes:
        raise TypeError(f"a row value must be bytes, not {type(value).__name__}")
    cdef const unsigned char* data = <const unsigned char*>PyBytes_AS_STRING(value)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(value)
    cdef Py_ssize_t i, extra = 0
    for i in range(size):
        if data[i] == 0x5C or data[i] == 0x09 or data[i] == 0x0A or data[i] == 0x0D:
            extra += 1
    return size + extra


cdef inline unsigned char* _put_escaped(unsigned char* out, object value) noexcept:
    if value is None or value is _UNCHANGED:
        out[0] = 0x5C  # \N
        out[1] = 0x4E
        return out + 2
    cdef const unsigned char* data = <const unsigned char*>PyBytes_AS_STRING(value)
    cdef Py_ssize_t i, size = PyBytes_GET_SIZE(value)
    cdef unsigned char byte
    for i in range(size):
        byte = data[i]
        if byte == 0x5C:
            out[0] = 0x5C
            out[1] = 0x5C
            out += 2
        elif byte == 0x09:
            out[0] = 0x5C
            out[1] = 0x74  # t
            out += 2
        elif byte == 0x0A:
            out[0] = 0x5C
            out[1] = 0x6E  # n
            out += 2
        elif byte == 0x0D:
            out[0] = 0x5C
            out[1] = 0x72  # r
            out += 2
        else:
            out[0] = byte
            out += 1
    return out


cdef bytes _text_line(bytes prefix, object fields, bytes suffix):
    """``prefix``, the fields escaped and tab-separated, ``suffix``."""
    cdef tuple values = tuple(fields)
    cdef Py_ssize_t n = len(values)
    cdef Py_ssize_t i
    cdef Py_ssize_t total = PyBytes_GET_SIZE(prefix) + PyBytes_GET_SIZE(suffix) + (n - 1 if n else 0)
    for i in range(n):
        total += _escaped_size(values[i])
    line = PyBytes_FromStringAndSize(NULL, total)
    cdef unsigned char* out = <unsigned char*>PyBytes_AS_STRING(line)
    memcpy(out, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix))
    out += PyBytes_GET_SIZE(prefix)
    for i in range(n):
        if i:
            out[0] = 0x09
            out += 1
        out = _put_escaped(out, values[i])
    memcpy(out, PyBytes_AS_STRING(suffix), PyBytes_GET_SIZE(suffix))
    return line


def copy_line(fields):
    """``copy_format.copy_line``: one line of COPY text format."""
    return _text_line(b"", fields, b"\n")


def staged_text_line(str op, tuple row, bytes all_changed):
    """``copy_format.staged_text_line``: op, the values, then the "unchanged" flags."""
    cdef bytes flags
    if _UNCHANGED in row:
        flags = b"\t".join([b"t" if value is _UNCHANGED else b"f" for value in row])
    else:
        flags = all_changed
    return _text_line(op.encode() + b"\t", row, b"\t" + flags + b"\n")


# -- the last change per key ----------------------------------------------------------------------------------------
@cython.boundscheck(True)
@cython.wraparound(True)
cdef tuple _key_of(tuple row, tuple positions):
    cdef Py_ssize_t i, n = PyTuple_GET_SIZE(positions)
    key = PyTuple_New(n)
    for i in range(n):
        value = row[<Py_ssize_t>positions[i]]
        Py_INCREF(value)
        PyTuple_SET_ITEM(key, i, value)
    PyObject_GC_UnTrack(<void*>key)
    return key


cdef inline tuple _pair(str op, tuple row):
    pair = (op, row)
    PyObject_GC_UnTrack(<void*>pair)
    return pair


cdef inline bint _has_unchanged(tuple row):
    for value in row:
        if value is _UNCHANGED:
            return True
    return False


cdef inline bint _all_null(tuple row):
    for value in row:
        if value is not None:
            return False
    return True


@cython.boundscheck(True)
@cython.wraparound(True)
cdef tuple _merged(tuple new, tuple previous):
    """``new`` with each unchanged value taken from ``previous``."""
    cdef Py_ssize_t i, n = PyTuple_GET_SIZE(new)
    if PyTuple_GET_SIZE(previous) != n:
        raise ValueError("zip() argument 2 is shorter than argument 1")
    row = PyTuple_New(n)
    for i in range(n):
        value = new[i]
        if value is _UNCHANGED:
            value = previous[i]
        Py_INCREF(value)
        PyTuple_SET_ITEM(row, i, value)
    PyObject_GC_UnTrack(<void*>row)
    return row


cdef inline void _last(dict changes, tuple key, tuple change) except *:
    """``change`` as the last of ``key``, whatever came before."""
    if PyDict_SetDefault(changes, key, change) is not <PyObject*>change:
        del changes[key]
        changes[key] = change


def keyed_change(dict changes, tuple key_positions, str op, old, new):
    """``last_change.keyed_change``: fold one change into ``changes`` (key -> (op, row))."""
    cdef tuple key, old_key, change, previous
    cdef PyObject* found
    cdef bint unchanged
    if op == "D":
        _last(changes, _key_of(old, key_positions), _pair("D", old))
        return
    key = _key_of(new, key_positions)
    if op == "I":
        changes[key] = _pair("I", new)
        return
    if old is not None and not _all_null(old):
        old_key = _key_of(old, key_positions)
        if old_key != key:
            _last(changes, old_key, _pair("D", old))
    change = _pair("U", new)
    found = PyDict_SetDefault(changes, key, change)
    if found is <PyObject*>change:
        return
    previous = <tuple>found
    del changes[key]
    unchanged = _has_unchanged(new)
    if previous[0] != "D" and unchanged:
        new = _merged(new, previous[1])
        unchanged = _has_unchanged(new)
    changes[key] = _pair("I" if previous[0] == "I" and not unchanged else "U", new)
