"""The sans-IO protocol core: operations, canonical encoding, signatures, validation, the thread
CRDT and set reconciliation. Bytes and values in, values and bytes out: nothing here touches the
clock, the network, the disk or randomness (tests/core/test_purity.py enforces it)."""
