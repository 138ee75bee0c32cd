"""The scheduler behind `flowc schedule`: runs pipelines on their cron, in the foreground.

Slots. A pipeline's `schedule` (cron, evaluated in UTC) defines its slots, the moments a run
is due. For each pipeline and profile the project's state store remembers the last slot the
scheduler dealt with (ran, or skipped by policy), so a restart knows what it missed.

Catch-up. When the scheduler wakes (at a slot, or after a restart) the slots since the last
one dealt with are due, and the pipeline's `catchup` decides what runs:

- `all`: one run per slot, oldest first, one after the other;
- `latest` (the default): one run, for the newest slot; the older ones are skipped;
- `none`: a run only if the newest slot is *current* (at most `GRACE` old, which is what a
  scheduler that was up and woke at the slot sees); slots missed while it was down are skipped.

A first start (nothing remembered) misses nothing: it waits for the next slot.

Overlap. A pipeline never has two runs at once: slots that come due while its run is going
stay due and follow the policy once it ends (so `latest` coalesces them into one run). Runs
of one project are started one at a time as well, because a DuckDB file admits one writing
process; pipelines of different projects run side by side. A run that collides with one
started by hand waits for it (up to the connection's `lock_timeout`); one that gives up
(exit 75) is started again for the same slot, never dropped.

A run is `flowc run SPEC --profile P` in a child process (the same Python), so a run that
crashes or is killed cannot take the scheduler with it, and it recompiles the spec: edits to
SQL and blocks take effect at the next run. Schedules themselves are read at start.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from croniter import croniter
from flowc.runtime.state import StateStore

Catchup = Literal["none", "latest", "all"]
DEFAULT_CATCHUP: Catchup = "latest"
GRACE = timedelta(minutes=1)
EXIT_BUSY = 75  # `flowc run`'s status when another process held the warehouse (cli.py)
_MAX_CATCHUP_SLOTS = 10_000  # a bound on `all` after a very long downtime of a busy cron


@dataclass(frozen=True)
class Job:
    """One scheduled pipeline of a project, in one profile."""

    spec: Path  # absolute
    root: Path  # the project root, where its state store lives
    pipeline: str
    profile: str
    cron: str
    catchup: Catchup = DEFAULT_CATCHUP

    @property
    def label(self) -> str:
        return f"{self.pipeline} ({self.profile})"


def slots_between(cron: str, after: datetime, until: datetime) -> list[datetime]:
    """The slots of `cron` in (`after`, `until`], oldest first (at most a bounded number).

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [s.hour for s in slots_between("0 */6 * * *", t, t + timedelta(hours=13))]
    [6, 12]
    """
    found: list[datetime] = []
    iterator = croniter(cron, after)
    while len(found) < _MAX_CATCHUP_SLOTS:
        slot: datetime = iterator.get_next(datetime)
        if slot > until:
            break
        found.append(slot)
    return found


def next_slot(cron: str, after: datetime) -> datetime:
    slot: datetime = croniter(cron, after).get_next(datetime)
    return slot


def slots_to_run(catchup: Catchup, due: list[datetime], now: datetime) -> list[datetime]:
    """Which of the `due` slots (oldest first) get a run under the `catchup` policy."""
    if not due:
        return []
    if catchup == "all":
        return list(due)
    if catchup == "latest":
        return [due[-1]]
    return [due[-1]] if now - due[-1] <= GRACE else []


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, UTC."""

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` (returns early on nothing; KeyboardInterrupt stops the scheduler)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))


class RunHandle(Protocol):
    def poll(self) -> int | None:
        """The run's exit status once it has ended, else None."""

    def send_signal(self, sig: int) -> None:
        """Ask the run to stop (SIGINT: it rolls back and exits)."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the run to end; its exit status."""


Launcher = Callable[[Job, datetime], RunHandle]


def launch_subprocess(job: Job, slot: datetime) -> RunHandle:
    """`flowc run` of the job in a child process; its output goes where the scheduler's goes."""
    command = [sys.executable, "-m", "flowc", "run", str(job.spec), "--profile", job.profile]
    return subprocess.Popen(command, cwd=job.root)


@dataclass
class _Running:
    job: Job
    slot: datetime
    handle: RunHandle


@dataclass
class Scheduler:
    """Keeps `jobs` on their schedules. `tick` does what is due now; `run_forever` loops."""

    jobs: list[Job]
    clock: Clock = field(default_factory=SystemClock)
    launcher: Launcher = launch_subprocess
    log: Callable[[str], None] = print
    poll_seconds: float = 1.0
    _stores: dict[Path, StateStore] = field(default_factory=dict)
    _running: dict[Job, _Running] = field(default_factory=dict)
    _queued: dict[Job, list[datetime]] = field(default_factory=dict)

    def start(self) -> None:
        """Remember "now" as the last slot of every job seen for the first time."""
        now = self.clock.now()
        for job in self.jobs:
            if self._store(job).last_slot(job.pipeline, job.profile) is None:
                self._store(job).set_last_slot(job.pipeline, job.profile, now)
            self.log(f"{job.label}: next run at {_show(next_slot(job.cron, now))}")

    def tick(self) -> None:
        """Reap ended runs, queue the slots that came due, start what may start."""
        now = self.clock.now()
        self._reap()
        for job in self.jobs:
            if job not in self._running and not self._queued.get(job):
                self._plan(job, now)
        busy_roots = {running.job.root for running in self._running.values()}
        for job in self.jobs:
            queue = self._queued.get(job)
            if queue and job not in self._running and job.root not in busy_roots:
                slot = queue.pop(0)
                self.log(f"{job.label}: starting the run for {_show(slot)}")
                self._running[job] = _Running(job, slot, self.launcher(job, slot))
                busy_roots.add(job.root)

    def run_forever(self) -> None:
        self.start()
        while True:
            self.tick()
            self.clock.sleep(self._seconds_to_wait())

    def wait_for_runs(self) -> None:
        """Tick until no run is going or queued (for `--once` and tests)."""
        while self._running or any(self._queued.values()):
            self.clock.sleep(self.poll_seconds)
            self.tick()

    def stop(self) -> None:
        """Interrupt the runs going (each rolls back: no half-written data) and wait for them."""
        for running in self._running.values():
            self.log(f"{running.job.label}: interrupting the run for {_show(running.slot)}")
            running.handle.send_signal(signal.SIGINT)
        for running in self._running.values():
            running.handle.wait()
        self._running.clear()
        self._queued.clear()

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()

    # --- helpers

    def _plan(self, job: Job, now: datetime) -> None:
        store = self._store(job)
        last = store.last_slot(job.pipeline, job.profile)
        if last is None:
            store.set_last_slot(job.pipeline, job.profile, now)
            return
        due = slots_between(job.cron, last, now)
        if not due:
            return
        chosen = slots_to_run(job.catchup, due, now)
        skipped = len(due) - len(chosen)
        if skipped:
            self.log(
                f"{job.label}: skipping {skipped} missed run(s) from {_show(due[0])} "
                f"(catchup = {job.catchup})"
            )
        self._queued[job] = chosen
        store.set_last_slot(job.pipeline, job.profile, due[-1])

    def _reap(self) -> None:
        for job, running in list(self._running.items()):
            status = running.handle.poll()
            if status is None:
                continue
            del self._running[job]
            if status == EXIT_BUSY:  # it collided with a run started by hand: not lost
                self._queued.setdefault(job, []).insert(0, running.slot)
                self.log(
                    f"{job.label}: the run for {_show(running.slot)} found the warehouse held "
                    "by another run; trying again"
                )
                continue
            outcome = "succeeded" if status == 0 else f"failed (exit {status})"
            self.log(f"{job.label}: the run for {_show(running.slot)} {outcome}")

    def _seconds_to_wait(self) -> float:
        if self._running or any(self._queued.values()):
            return self.poll_seconds
        now = self.clock.now()
        upcoming = min(next_slot(job.cron, now) for job in self.jobs)
        return max((upcoming - now).total_seconds(), 0.0) + 0.01

    def _store(self, job: Job) -> StateStore:
        if job.root not in self._stores:
            store = self._stores[job.root] = StateStore.open(job.root, recover=True)
            if store.recovered:
                self.log(f"warning: {store.recovered}")
        return self._stores[job.root]


def _show(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def scheduled(jobs: Iterable[Job]) -> list[Job]:
    """The jobs sorted by project, then pipeline (a deterministic order of ticks and logs)."""
    return sorted(jobs, key=lambda job: (str(job.root), job.pipeline, job.profile))
