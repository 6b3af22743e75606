"""Byte-level helpers for answers reused for another client (the caches): the same answer with that
client's ID and spelling of the question, without parsing either packet."""

from __future__ import annotations

__all__ = ["for_client", "question_end"]


def for_client(answer: bytes, packet: bytes) -> bytes:
    """The answer with the client's ID and the client's spelling of the question name (same length, as
    the names are equal but for case: resolvers that randomise case check it)."""
    qend = question_end(packet)
    if qend is None or question_end(answer) != qend:
        return packet[:2] + answer[2:]
    return packet[:2] + answer[2:12] + packet[12:qend] + answer[qend:]


def question_end(packet: bytes) -> int | None:
    """Offset just past the first question's name (uncompressed, as the first name always is)."""
    i = 12
    while i < len(packet):
        n = packet[i]
        if n == 0:
            return i + 1
        if n & 0xC0:
            return None
        i += n + 1
    return None
