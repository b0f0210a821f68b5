"""A project's retention policy (deployed inside the config snapshot) and the cutoffs it
gives at a moment: what is older than a cutoff is deleted from every store
(docs/compliance.md, "Retention")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from dataintel.model.fields import EVENT_NAME

MAX_DAYS = 36_500  # a hundred years
Days = Annotated[int, Field(ge=1, le=MAX_DAYS)]
EventName = Annotated[str, Field(pattern=EVENT_NAME)]
# Turns a value (an event name, a cutoff) into SQL: a placeholder binding it, or a literal.
Bind = Callable[[str | datetime], str]


class RetentionPolicy(BaseModel):
    """How long a project's data is kept, in days; null keeps it forever (the default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    events_days: Days | None = Field(
        default=None,
        description="Raw events older than this (by event time) are deleted from every store "
        "(analytics store, event log, data lake). Null: kept forever.",
    )
    event_overrides: dict[EventName, Days | None] = Field(
        default_factory=dict,
        max_length=200,
        description="Per event name, days that replace events_days for that event "
        '(e.g. {"view": 30, "purchase": 730}); null keeps that event forever.',
    )
    dead_letters_days: Days | None = Field(
        default=None,
        description="Dead letters received longer ago than this are deleted. Null: kept.",
    )
    reports_days: Days | None = Field(
        default=None,
        description="Reports created longer ago than this expire (their files are deleted). "
        "Null: only the reports' own expiry applies.",
    )

    def configured(self) -> bool:
        """Whether the policy deletes anything at all."""
        return (
            self.events_days is not None
            or any(d is not None for d in self.event_overrides.values())
            or self.dead_letters_days is not None
            or self.reports_days is not None
        )

    def event_cutoffs(self, now: datetime) -> EventCutoffs:
        """The events' cutoffs at ``now``."""
        by_event = {
            name: None if days is None else now - timedelta(days=days)
            for name, days in self.event_overrides.items()
        }
        default = None if self.events_days is None else now - timedelta(days=self.events_days)
        return EventCutoffs(by_event, default)

    def cutoff(self, days: int | None, now: datetime) -> datetime | None:
        return None if days is None else now - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class EventCutoffs:
    """Events with event time before their cutoff expire. ``by_event``: per event name (None:
    never); ``default``: every other event (None: never)."""

    by_event: dict[str, datetime | None] = field(default_factory=dict)
    default: datetime | None = None

    def of(self, event: str) -> datetime | None:
        return self.by_event.get(event, self.default)

    def any(self) -> bool:
        return self.default is not None or any(c is not None for c in self.by_event.values())

    def latest(self) -> datetime | None:
        """The latest cutoff: nothing at or after it expires."""
        cutoffs = [c for c in (self.default, *self.by_event.values()) if c is not None]
        return max(cutoffs) if cutoffs else None

    def earliest_everywhere(self) -> datetime | None:
        """A time before which every event expires, whatever its name (None: some event is
        kept forever, or no default)."""
        if self.default is None or any(c is None for c in self.by_event.values()):
            return None
        return min([self.default, *(c for c in self.by_event.values() if c is not None)])

    def condition(self, event_sql: str, ts_sql: str, bind: Bind) -> str | None:
        """A SQL condition true for expired rows (None: nothing expires), the columns named
        by ``event_sql`` and ``ts_sql``; ``bind`` turns a value (str, datetime) into SQL."""
        terms = [
            f"({event_sql} = {bind(name)} AND {ts_sql} < {bind(cutoff)})"
            for name, cutoff in sorted(self.by_event.items())
            if cutoff is not None
        ]
        if self.default is not None:
            named = ", ".join(bind(name) for name in sorted(self.by_event))
            others = f"{event_sql} NOT IN ({named}) AND " if named else ""
            terms.append(f"({others}{ts_sql} < {bind(self.default)})")
        return " OR ".join(terms) or None
