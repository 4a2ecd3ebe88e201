/* Many Ed25519 signature checks in one call, without the GIL (p2pcomments.core.ops).
 *
 * Checking one signature through PyNaCl's binding releases and takes back the GIL around each
 * 60-microsecond check; with two verify threads, the event loop and the store's writer all
 * wanting it, a thread done with one check waits for the GIL before it can start the next
 * (scripts/bench_store.py --cores-only). Here a whole chunk is checked in one release.
 *
 * The verdicts are libsodium's crypto_sign_open, the very function PyNaCl calls, reached through
 * the address PyNaCl's own cffi module gives (so acceptance rules are libsodium's exactly and
 * nothing is linked here); ops.py passes it in. A key that signs at least ``min_uses`` of the
 * messages first has them checked against a table of its multiples (_ed25519.c), which accepts
 * only what libsodium accepts, in a fraction of the time; whatever it does not accept goes to
 * libsodium. No output buffer: libsodium allows NULL. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_ed25519.h"

typedef int (*sign_open_fn)(unsigned char *, unsigned long long *, const unsigned char *,
                            unsigned long long, const unsigned char *);

#define KEY_BYTES 32

typedef struct {
    const unsigned char *key;
    Py_ssize_t index;
} keyed;

static int by_key(const void *a, const void *b) {
    const keyed *left = a, *right = b;
    int order = memcmp(left->key, right->key, KEY_BYTES);
    if (order != 0) {
        return order;
    }
    return (left->index > right->index) - (left->index < right->index);
}

/* The verdicts of messages[i] (signature then message, size bytes) by keys[i], out[i] 1 or 0.
 * A key with a table (cached, or made for having at least min_uses messages here; min_uses 0:
 * no tables) has its messages checked with it first. fast_only: out[i] is whether the table
 * accepts it, libsodium not asked (for tests). */
static void check_all(sign_open_fn sign_open, ed25519_sha512 sha512, const unsigned char *messages,
                      Py_ssize_t size, const unsigned char *keys, Py_ssize_t count,
                      Py_ssize_t min_uses, int fast_only, char *out) {
    keyed *order = NULL;
    unsigned char *scratch = NULL;
    if (min_uses > 0 && sha512 != NULL) {
        order = malloc(sizeof(keyed) * (size_t)(count > 0 ? count : 1));
        scratch = malloc((size_t)size);
    }
    if (order == NULL || scratch == NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            out[i] = fast_only ? 0
                               : sign_open(NULL, NULL, messages + i * size,
                                           (unsigned long long)size, keys + i * KEY_BYTES) == 0;
        }
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        order[i].key = keys + i * KEY_BYTES;
        order[i].index = i;
    }
    qsort(order, (size_t)count, sizeof(keyed), by_key);
    for (Py_ssize_t first = 0; first < count;) {
        Py_ssize_t end = first + 1;
        while (end < count && memcmp(order[end].key, order[first].key, KEY_BYTES) == 0) {
            end++;
        }
        ed25519_use use;
        int tabled = ed25519_use_key(&use, order[first].key, end - first >= min_uses);
        for (Py_ssize_t k = first; k < end; k++) {
            Py_ssize_t i = order[k].index;
            const unsigned char *message = messages + i * size;
            int accepted = tabled && ed25519_accepts(use.table, message, order[k].key,
                                                     message + 64, (size_t)(size - 64), sha512,
                                                     scratch);
            if (fast_only || accepted) {
                out[i] = (char)accepted;
            } else {
                out[i] = sign_open(NULL, NULL, message, (unsigned long long)size,
                                   order[k].key) == 0;
            }
        }
        if (tabled) {
            ed25519_done(&use);
        }
        first = end;
    }
done:
    free(order);
    free(scratch);
}

static PyObject *run(PyObject *args, int fast_only) {
    unsigned long long sign_open_address = 0, sha512_address;
    Py_buffer signed_messages, keys;
    Py_ssize_t size, min_uses = 1;
    int parsed = fast_only ? PyArg_ParseTuple(args, "Ky*ny*", &sha512_address, &signed_messages,
                                              &size, &keys)
                           : PyArg_ParseTuple(args, "KKy*ny*n", &sign_open_address,
                                              &sha512_address, &signed_messages, &size, &keys,
                                              &min_uses);
    if (!parsed) {
        return NULL;
    }
    PyObject *verdicts = NULL;
    Py_ssize_t count = size > 0 ? signed_messages.len / size : 0;
    if ((!fast_only && sign_open_address == 0) || size < 64 ||
        signed_messages.len != count * size || keys.len != count * KEY_BYTES) {
        PyErr_SetString(PyExc_ValueError,
                        "open_all: messages must be whole multiples of size, one key each");
        goto done;
    }
    verdicts = PyBytes_FromStringAndSize(NULL, count);
    if (verdicts == NULL) {
        goto done;
    }
    {
        sign_open_fn sign_open = (sign_open_fn)(uintptr_t)sign_open_address;
        ed25519_sha512 sha512 = (ed25519_sha512)(uintptr_t)sha512_address;
        char *out = PyBytes_AS_STRING(verdicts);
        Py_BEGIN_ALLOW_THREADS
        check_all(sign_open, sha512, signed_messages.buf, size, keys.buf, count, min_uses,
                  fast_only, out);
        Py_END_ALLOW_THREADS
    }
done:
    PyBuffer_Release(&signed_messages);
    PyBuffer_Release(&keys);
    return verdicts;
}

/* open_all(sign_open, sha512, signed, size, keys, min_uses) -> bytes: ``signed`` holds
 * messages of ``size`` bytes each (signature then message), ``keys`` their 32-byte public keys
 * in the same order; byte i of the result is 1 if message i is signed by key i, else 0. Keys with
 * at least ``min_uses`` messages (0: none) are checked with a table first. */
static PyObject *open_all(PyObject *module, PyObject *args) { return run(args, 0); }

/* table_accepts(sha512, signed, size, keys) -> bytes: whether the table of each key accepts
 * each message, libsodium not asked (tests compare it with libsodium). */
static PyObject *table_accepts(PyObject *module, PyObject *args) { return run(args, 1); }

static PyMethodDef methods[] = {
    {"open_all", open_all, METH_VARARGS, "Check many signed messages without the GIL."},
    {"table_accepts", table_accepts, METH_VARARGS, "What the key tables alone accept (tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_signatures", NULL, -1, methods};

PyMODINIT_FUNC PyInit__signatures(void) {
    PyObject *made = PyModule_Create(&module);
    /* 0 if the table code's constants came out wrong: then no key gets a table */
    if (made != NULL && PyModule_AddIntConstant(made, "tables_ready", ed25519_init()) < 0) {
        Py_DECREF(made);
        return NULL;
    }
    return made;
}
