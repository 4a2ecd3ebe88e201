/* Many Ed25519 signature checks in one call, without the GIL (p2pcomments.core.ops).
 *
 * Checking one signature through PyNaCl's binding releases and takes back the GIL around each
 * 60-microsecond check; with two verify threads, the event loop and the store's writer all
 * wanting it, a thread done with one check waits for the GIL before it can start the next
 * (scripts/bench_store.py --cores-only). Here a whole chunk is checked in one release.
 *
 * The check is libsodium's crypto_sign_open, the very function PyNaCl calls, reached through
 * the address PyNaCl's own cffi module gives (so acceptance rules are libsodium's exactly and
 * nothing is linked here); ops.py passes it in. No output buffer: libsodium allows NULL. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef int (*sign_open_fn)(unsigned char *, unsigned long long *, const unsigned char *,
                            unsigned long long, const unsigned char *);

#define KEY_BYTES 32

/* open_all(address, signed, size, keys) -> bytes: ``signed`` holds messages of ``size`` bytes
 * each (signature then message), ``keys`` their 32-byte public keys in the same order; byte i
 * of the result is 1 if message i is signed by key i, else 0. */
static PyObject *open_all(PyObject *module, PyObject *args) {
    unsigned long long address;
    Py_buffer signed_messages, keys;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "Ky*ny*", &address, &signed_messages, &size, &keys)) {
        return NULL;
    }
    PyObject *verdicts = NULL;
    Py_ssize_t count = size > 0 ? signed_messages.len / size : 0;
    if (address == 0 || size < 64 || signed_messages.len != count * size ||
        keys.len != count * KEY_BYTES) {
        PyErr_SetString(PyExc_ValueError,
                        "open_all: messages must be whole multiples of size, one key each");
        goto done;
    }
    verdicts = PyBytes_FromStringAndSize(NULL, count);
    if (verdicts == NULL) {
        goto done;
    }
    {
        sign_open_fn sign_open = (sign_open_fn)(uintptr_t)address;
        const unsigned char *message = signed_messages.buf;
        const unsigned char *key = keys.buf;
        char *out = PyBytes_AS_STRING(verdicts);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < count; i++) {
            out[i] = sign_open(NULL, NULL, message + i * size, (unsigned long long)size,
                               key + i * KEY_BYTES) == 0;
        }
        Py_END_ALLOW_THREADS
    }
done:
    PyBuffer_Release(&signed_messages);
    PyBuffer_Release(&keys);
    return verdicts;
}

static PyMethodDef methods[] = {
    {"open_all", open_all, METH_VARARGS, "Check many signed messages without the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_signatures", NULL, -1, methods};

PyMODINIT_FUNC PyInit__signatures(void) { return PyModule_Create(&module); }
