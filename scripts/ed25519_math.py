"""Edwards25519 arithmetic in pure Python, for the Ed25519 edge cases of gen_rule_vectors.py.

Slow and not constant-time: never use it to sign anything real. It exists so that the vectors can
hold keys and signatures that no honest signer produces (small-order keys, mixed-order keys,
non-canonical scalars and encodings) and so that the generator can say, for each, what other
verification rules (RFC 8032 cofactored, ZIP-215) would decide, next to what libsodium decides.
"""

from __future__ import annotations

import hashlib
from typing import Final

P: Final = 2**255 - 19
L: Final = 2**252 + 27742317777372353535851937790883648493
_D: Final = -121665 * pow(121666, P - 2, P) % P
_SQRT_M1: Final = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z
IDENTITY: Final[Point] = (0, 1, 1, 0)


def _inv(x: int) -> int:
    return pow(x, P - 2, P)


def add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * _D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(k: int, point: Point) -> Point:
    result = IDENTITY
    while k:
        if k & 1:
            result = add(result, point)
        point = add(point, point)
        k >>= 1
    return result


def equal(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _x_for(y: int, sign: int) -> int | None:
    """The x with the given parity for y (already reduced), or None if there is none."""
    x2 = (y * y - 1) * _inv(_D * y * y + 1) % P
    if x2 == 0:
        return 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * _SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return x if (x & 1) == sign else P - x


def _affine(x: int, y: int) -> Point:
    return (x % P, y % P, 1, x * y % P)


def encode(point: Point) -> bytes:
    x, y, z, _ = point
    zi = _inv(z)
    x, y = x * zi % P, y * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def decode_strict(data: bytes) -> Point | None:
    """RFC 8032 §5.1.3: y < p, and x = 0 with the sign bit set fails."""
    value = int.from_bytes(data, "little")
    y, sign = value & (1 << 255) - 1, value >> 255
    if y >= P:
        return None
    x = _x_for(y, sign)
    if x is None or (x == 0 and sign):
        return None
    return _affine(x, y)


def decode_zip215(data: bytes) -> Point | None:
    """ZIP-215: y may be non-canonical (reduced mod p); x = 0 with the sign bit set is x = 0."""
    value = int.from_bytes(data, "little")
    y, sign = (value & (1 << 255) - 1) % P, value >> 255
    x = _x_for(y, sign)
    return None if x is None else _affine(x if x else 0, y)


def point_with_y(y: int) -> Point | None:
    x = _x_for(y % P, 0)
    return None if x is None else _affine(x, y)


BASE: Final[Point] = _affine(_x_for(4 * _inv(5) % P, 0) or 0, 4 * _inv(5) % P)


def challenge(r_bytes: bytes, a_bytes: bytes, message: bytes) -> int:
    """h = SHA-512(R || A || M) mod L."""
    return int.from_bytes(hashlib.sha512(r_bytes + a_bytes + message).digest(), "little") % L


def _cofactored(s: int, r_point: Point, h: int, a_point: Point) -> bool:
    left = mul(8, mul(s, BASE))
    right = mul(8, add(r_point, mul(h, a_point)))
    return equal(left, right)


def verify_rfc8032(a_bytes: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 §5.1.7 with the cofactored equation: S < L, canonical R and A, any order."""
    s = int.from_bytes(signature[32:], "little")
    r_point, a_point = decode_strict(signature[:32]), decode_strict(a_bytes)
    if s >= L or r_point is None or a_point is None:
        return False
    return _cofactored(s, r_point, challenge(signature[:32], a_bytes, message), a_point)


def verify_zip215(a_bytes: bytes, message: bytes, signature: bytes) -> bool:
    """ZIP-215: S < L, non-canonical R and A allowed, cofactored equation."""
    s = int.from_bytes(signature[32:], "little")
    r_point, a_point = decode_zip215(signature[:32]), decode_zip215(a_bytes)
    if s >= L or r_point is None or a_point is None:
        return False
    return _cofactored(s, r_point, challenge(signature[:32], a_bytes, message), a_point)


def order_of_torsion(point: Point) -> int:
    """The order of a point of the 8-torsion subgroup."""
    return next(k for k in (1, 2, 4, 8) if equal(mul(k, point), IDENTITY))


def torsion_point_of_order_8() -> Point:
    """A point of order 8: [L] times a curve point whose torsion part has order 8."""
    y = 2
    while True:
        candidate = point_with_y(y)
        if candidate is not None:
            torsion = mul(L, candidate)
            if order_of_torsion(torsion) == 8:
                return torsion
        y += 1
