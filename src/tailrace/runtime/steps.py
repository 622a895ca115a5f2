"""The scheduler's knobs (RuntimeConfig) and the unit every transition runs in (Step: one
pipeline's share of a transaction that holds its row lock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tailrace.state import Pipeline, Transaction


@dataclass(frozen=True, kw_only=True)
class RuntimeConfig:
    lease: timedelta = timedelta(minutes=2)
    """An attempt's lease when the object sets no reportProgressTimeout (Task Runner: ack in 2 min)."""
    lookahead: timedelta = timedelta(seconds=30)
    """Instances are created this long before they are due, so that they start on time."""
    windows_per_step: int = 25
    """Windows created per pipeline transaction (a long backfill is created over several)."""
    instances_per_step: int = 200
    """A pipeline transaction stops adding windows once it created this many instances (it
    holds the pipeline's lock, which DeactivatePipeline and SetStatus wait for)."""
    steps_per_tick: int = 40
    """Pipeline transactions one scheduler tick runs, shared round-robin between due pipelines;
    the rest of a backlog waits for the next tick, so that no pipeline holds the store long."""
    step_seconds: float = 0.25
    """A pipeline transaction stops adding windows after this long (at least one is added), so
    that DeactivatePipeline or SetStatus never waits long for the pipeline's lock."""
    tick_seconds: float = 1.0
    """A tick starts no new pipeline transaction after this long (timers and leases are
    handled every tick, and a pipeline activated meanwhile gets its turn in the next)."""
    cancel_per_step: int = 200
    """Waiting instances the scheduler cancels per transaction for a deactivated pipeline."""
    cancel_inline: int = 50
    """Waiting instances DeactivatePipeline cancels itself (a small pipeline is INACTIVE at
    once); the scheduler cancels the rest, so that the call answers fast whatever the backlog."""
    throttle_recheck: timedelta = timedelta(minutes=1)
    """How long an owner's schedules wait once [limits] instances_per_hour is reached."""
    finish_check: timedelta = timedelta(seconds=10)
    """How often a pipeline whose schedule has ended is checked for FINISHED."""
    default_max_active: int = 1
    """maxActiveInstances when an object sets none."""


@dataclass
class Step:
    """One pipeline's share of a transaction."""

    tx: Transaction
    pipeline: Pipeline
    now: datetime
    evaluated: int = 0
    notes: list[str] = field(default_factory=list)
