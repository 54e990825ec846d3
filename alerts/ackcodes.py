"""Short acknowledgement codes, unique by construction and never reused.

Alerts get their code when they open (from the database sequence `ack_code_seq`); dispatch
renders and parses them. Pure.
"""

import hashlib

# No 0/O, 1/I/L (misread), and no vowels at all: codes can never spell words, and can never
# collide with a reply keyword (STOP, YES, END, HELP, ACK ... all contain a vowel).
ACK_ALPHABET = "23456789BCDFGHJKMNPQRSTVWXYZ"
_MIN_CODE_LENGTH = 3
_FEISTEL_ROUNDS = 4


class AckCodeGenerator:
    """Map a database sequence number to a short ack code, bijectively.

    Sequence numbers 0 .. 28**3 - 1 give 3-character codes, the next 28**4 give 4-character
    codes, and so on. Within one length the index is shuffled by a keyed Feistel network
    (cycle-walking over the next even power of two), which is a permutation, so distinct
    sequence numbers always give distinct codes. Codes look random but need no lookup table
    and no uniqueness retry.

    The key must never change in a deployment: codes from two keys can collide.
    """

    def __init__(self, key: bytes = b"tocsin-ack-v1") -> None:
        self._key = hashlib.blake2b(key, digest_size=32).digest()

    @staticmethod
    def _band(seq: int) -> tuple[int, int]:
        """(code length, index within that length) for a sequence number."""
        length, start = _MIN_CODE_LENGTH, 0
        while seq - start >= len(ACK_ALPHABET) ** length:
            start += len(ACK_ALPHABET) ** length
            length += 1
        return length, seq - start

    def _round(self, length: int, rnd: int, value: int, bits: int) -> int:
        digest = hashlib.blake2b(
            f"{length}:{rnd}:{value}".encode(), key=self._key, digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") & ((1 << bits) - 1)

    def _feistel(self, length: int, x: int, half: int, *, inverse: bool = False) -> int:
        mask = (1 << half) - 1
        left, right = x >> half, x & mask
        rounds = range(_FEISTEL_ROUNDS)
        if not inverse:
            for r in rounds:
                left, right = right, left ^ self._round(length, r, right, half)
        else:
            for r in reversed(rounds):
                left, right = right ^ self._round(length, r, left, half), left
        return (left << half) | right

    def _permute(self, length: int, index: int, *, inverse: bool = False) -> int:
        space = len(ACK_ALPHABET) ** length
        half = ((space - 1).bit_length() + 1) // 2
        x = self._feistel(length, index, half, inverse=inverse)
        while x >= space:  # cycle-walk: stays a permutation of [0, space)
            x = self._feistel(length, x, half, inverse=inverse)
        return x

    def code(self, seq: int) -> str:
        """The ack code for sequence number `seq` (>= 0)."""
        if seq < 0:
            raise ValueError(f"sequence number {seq} is negative")
        length, index = self._band(seq)
        n = self._permute(length, index)
        base = len(ACK_ALPHABET)
        chars = []
        for _ in range(length):
            n, digit = divmod(n, base)
            chars.append(ACK_ALPHABET[digit])
        return "".join(reversed(chars))

    def sequence_of(self, code: str) -> int:
        """Inverse of `code()`; raises ValueError for a string no sequence number produces."""
        code = code.strip().upper()
        if len(code) < _MIN_CODE_LENGTH or any(c not in ACK_ALPHABET for c in code):
            raise ValueError(f"{code!r} is not an ack code")
        base = len(ACK_ALPHABET)
        n = 0
        for c in code:
            n = n * base + ACK_ALPHABET.index(c)
        start = sum(base**k for k in range(_MIN_CODE_LENGTH, len(code)))
        return start + self._permute(len(code), n, inverse=True)


def new_ack_code(seq: int) -> str:
    """The ack code for database sequence number `seq`, with the default key."""
    return AckCodeGenerator().code(seq)


def is_ack_code(token: str) -> bool:
    """Whether `token` (any case) has the shape of an ack code."""
    token = token.upper()
    return len(token) >= _MIN_CODE_LENGTH and all(c in ACK_ALPHABET for c in token)
