"""Crypto-shredding for an append-only log (Kafka): a subject's records can be made unreadable
without rewriting the log.

Each appended record that names an entity (its user id, else its cart id, else its session
id — the partitioning key) is encrypted with AES-256-GCM under that subject's data key, a
random key kept in the metadata store (``subject_keys``) under the subject's keyed hash. A
sealed record is ``0x01 · key id (32 bytes) · nonce (12) · ciphertext+tag``, the key id also
bound as associated data; a plain record (no entity) is the JSON itself (starts with ``{``).
Erasing a subject deletes the keys of the user, their carts and their sessions: the log
still holds the ciphertext, which no one can read any more, and readers skip it (as the
embedded log skips tombstones).

The key id is the subject's keyed hash, so a subject seen again after an erasure gets a new
key under the same id: its old records then fail authentication and are skipped like the
rest. Keys are cached in memory (a process's cache of a destroyed key is dropped by ``destroy``;
other processes' copies live until they restart, never on disk).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from dataintel.model.subject import subject_hash
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.metadata.engine import scrub
from dataintel.storage.metadata.gdpr_models import SubjectKey
from dataintel.storage.metadata.gdpr_repository import installation_secret

SEALED = 0x01
ID_BYTES, NONCE_BYTES = 32, 12
CACHED_KEYS = 200_000

Subject = tuple[str, str]  # (project id, entity id)


class SubjectKeys:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]
        self._lock = threading.Lock()
        # key id → its cipher (the key schedule done once), and subject → key id (the HMAC
        # done once): the per-record cost is one AES-GCM pass.
        self._cache: OrderedDict[bytes, AESGCM] = OrderedDict()
        self._ids: OrderedDict[Subject, bytes] = OrderedDict()

    def key_id(self, subject: Subject) -> bytes:
        found = self._ids.get(subject)
        if found is None:
            secret = installation_secret(self._sessions)
            found = bytes.fromhex(subject_hash(secret, *subject))
            with self._lock:
                self._ids[subject] = found
                if len(self._ids) > CACHED_KEYS:
                    self._ids.popitem(last=False)
        return found

    def for_subjects(self, subjects: Iterable[Subject]) -> dict[Subject, tuple[bytes, AESGCM]]:
        """(key id, cipher) per subject, creating the keys that do not exist yet."""
        ids = {s: self.key_id(s) for s in set(subjects)}
        keys = self._cached(ids.values())
        missing = [i for i in ids.values() if i not in keys]
        if missing:
            keys |= self._create(missing)
        return {s: (i, keys[i]) for s, i in ids.items()}

    def by_ids(self, ids: Iterable[bytes]) -> dict[bytes, AESGCM]:
        """The ciphers of the keys that still exist among ``ids`` (a destroyed one is absent)."""
        wanted = set(ids)
        keys = self._cached(wanted)
        missing = wanted - keys.keys()
        if missing:
            found = self._load(missing)
            self._remember(found)
            keys |= found
        return keys

    def destroy(self, subjects: Iterable[Subject]) -> int:
        """Delete the subjects' keys (their records become unreadable); how many existed."""
        ids = [self.key_id(s) for s in set(subjects)]
        with self._lock:
            for i in ids:
                self._cache.pop(i, None)
        with self._sessions.begin() as session:
            done = session.execute(
                delete(SubjectKey).where(SubjectKey.id.in_([i.hex() for i in ids]))
            )
            destroyed = int(done.rowcount)  # type: ignore[attr-defined]
        scrub(self._engine, ["subject_keys"])
        return destroyed

    def close(self) -> None:
        self._engine.dispose()

    def _cached(self, ids: Iterable[bytes]) -> dict[bytes, AESGCM]:
        with self._lock:
            return {i: k for i in ids if (k := self._cache.get(i)) is not None}

    def _remember(self, keys: Mapping[bytes, AESGCM]) -> None:
        with self._lock:
            self._cache.update(keys)
            while len(self._cache) > CACHED_KEYS:
                self._cache.popitem(last=False)

    def _load(self, ids: Iterable[bytes]) -> dict[bytes, AESGCM]:
        with self._sessions() as session:
            rows = session.execute(
                select(SubjectKey.id, SubjectKey.key).where(
                    SubjectKey.id.in_([i.hex() for i in ids])
                )
            )
            return {bytes.fromhex(i): AESGCM(bytes.fromhex(k)) for i, k in rows}

    def _create(self, ids: Sequence[bytes]) -> dict[bytes, AESGCM]:
        """Insert a random key per id unless one exists (another process may race), then
        read what is stored: every process ends up with the same key."""
        with self._sessions.begin() as session:
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            rows = [{"id": i.hex(), "key": AESGCM.generate_key(bit_length=256).hex()} for i in ids]
            session.execute(insert(SubjectKey).values(rows).on_conflict_do_nothing())
        found = self._load(ids)
        self._remember(found)
        return found


def seal(key_id: bytes, cipher: AESGCM, value: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return bytes([SEALED]) + key_id + nonce + cipher.encrypt(nonce, value, key_id)


def sealed_id(value: bytes) -> bytes | None:
    """The key id of a sealed record (None: a plain one)."""
    if not value or value[0] != SEALED:
        return None
    return value[1 : 1 + ID_BYTES]


def unseal(entries: Sequence[LogEntry], keys: SubjectKeys) -> list[LogEntry]:
    """The entries readable: plain ones as they are, sealed ones decrypted; a sealed entry
    whose key was destroyed (an erased subject) is left out."""
    ids = {i for e in entries if (i := sealed_id(e.value)) is not None}
    if not ids:
        return list(entries)
    found = keys.by_ids(ids)
    out: list[LogEntry] = []
    for entry in entries:
        key_id = sealed_id(entry.value)
        if key_id is None:
            out.append(entry)
        elif (cipher := found.get(key_id)) is not None:
            body = entry.value[1 + ID_BYTES :]
            try:
                plain = cipher.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], key_id)
            except InvalidTag:  # sealed under a destroyed key the subject has since replaced
                continue
            out.append(LogEntry(entry.partition, entry.offset, plain, entry.trace))
    return out
