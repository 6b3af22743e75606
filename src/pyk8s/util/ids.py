"""Random identifiers for objects (metadata.uid, generateName suffixes) and requests (Audit-Id).

They must be unique, not secret: a PRNG seeded from the OS is several times faster than uuid.uuid4(),
which reads os.urandom on every call, on the API server's hottest path.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))
_VERSION_MASK = ~(0xF000 << 64)
_VERSION_4 = 0x4000 << 64
_VARIANT_MASK = ~(0xC000 << 48)
_VARIANT_RFC4122 = 0x8000 << 48


def random_string(length: int, alphabet: str) -> str:
    """`length` characters of `alphabet` (generateName suffixes, generated volume names)."""
    return "".join(_random.choices(alphabet, k=length))


def random_uuid() -> str:
    """A version-4 UUID string like uuid.uuid4() gives."""
    n = (_random.getrandbits(128) & _VERSION_MASK & _VARIANT_MASK) | _VERSION_4 | _VARIANT_RFC4122
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
