"""The hash chain: what an entry's hash covers, and the check of a whole chain.

``hash = sha256(canonical JSON of [chain, seq, at, actor, action, target, detail,
prev_hash])`` (keys sorted, no spaces, UTF-8; ``at`` as ISO 8601 UTC with microseconds).
Each entry names the previous entry's hash, so altering, removing or inserting an entry
breaks every later link; the chain's head row records the last (seq, hash), so cutting
entries off the end is noticed too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Link:
    """What a stored entry says, as read back."""

    chain: str
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    problem: str


def entry_hash(
    chain: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    when = at.astimezone(UTC).isoformat(timespec="microseconds")
    body = [chain, seq, when, actor, action, target, detail, prev_hash]
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def verify(links: Iterable[Link], head: tuple[int, str] | None) -> tuple[int, list[Problem]]:
    """(entries read, problems) for one chain's entries in ``seq`` order and its head."""
    problems: list[Problem] = []
    expected_seq, prev = 1, GENESIS
    count = 0
    for link in links:
        count += 1
        if link.seq != expected_seq:
            problems.append(
                Problem(expected_seq, f"entries {expected_seq}..{link.seq - 1} are missing")
            )
        elif link.prev_hash != prev:
            problems.append(Problem(link.seq, "prev_hash does not match the previous entry's hash"))
        recomputed = entry_hash(
            link.chain,
            link.seq,
            link.at,
            link.actor,
            link.action,
            link.target,
            link.detail,
            link.prev_hash,
        )
        if recomputed != link.hash:
            problems.append(Problem(link.seq, "the entry's content does not match its hash"))
        expected_seq, prev = link.seq + 1, link.hash
    last = expected_seq - 1
    if head is None:
        if count:
            problems.append(Problem(last, "the chain has entries but no head"))
    elif head[0] != last:
        problems.append(
            Problem(
                last + 1 if head[0] > last else head[0],
                f"the head says {head[0]} entries, the chain holds {last}",
            )
        )
    elif head[1] != prev:
        problems.append(Problem(last, "the head's hash does not match the last entry"))
    return count, problems
