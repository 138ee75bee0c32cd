"""The scheduler: catch-up policies and overlap, on a fake clock; `flowc schedule` for real."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flowc.runtime.scheduler import Catchup, Job, Scheduler, slots_to_run
from flowc.runtime.state import StateStore
from flowc_cli import flowc

T0 = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)  # just after the 10:00 slot
HOURLY = "0 * * * *"


@dataclass
class FakeClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class FakeRun:
    """A run that ends when the test says so (or at once)."""

    ended: bool = True
    signals: list[int] = field(default_factory=list)

    def poll(self) -> int | None:
        return 0 if self.ended else None

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self.ended = True

    def wait(self, timeout: float | None = None) -> int:
        return 0


@dataclass
class Launches:
    runs: list[tuple[str, datetime]] = field(default_factory=list)
    keep_running: bool = False
    handles: list[FakeRun] = field(default_factory=list)

    def __call__(self, job: Job, slot: datetime) -> FakeRun:
        self.runs.append((job.pipeline, slot))
        handle = FakeRun(ended=not self.keep_running)
        self.handles.append(handle)
        return handle


def job(root: Path, catchup: Catchup, pipeline: str = "p", cron: str = HOURLY) -> Job:
    return Job(root / f"{pipeline}.flow", root, pipeline, "dev", cron, catchup)


def scheduler(jobs: list[Job], clock: FakeClock, launches: Launches) -> Scheduler:
    return Scheduler(jobs, clock=clock, launcher=launches, log=lambda _: None)


@pytest.mark.parametrize(("catchup", "expected"), [("none", 0), ("latest", 1), ("all", 5)])
def test_downtime_across_five_slots_gives_0_1_or_5_runs(
    tmp_path: Path, catchup: Catchup, expected: int
) -> None:
    clock, launches = FakeClock(T0), Launches()
    first = scheduler([job(tmp_path, catchup)], clock, launches)
    first.start()
    first.tick()
    first.close()  # the scheduler goes down after 10:00 and comes back at 15:30
    clock.moment = T0 + timedelta(hours=5, minutes=30)
    again = scheduler([job(tmp_path, catchup)], clock, launches)
    again.start()
    again.tick()
    again.wait_for_runs()
    again.close()
    slots = [slot.hour for _, slot in launches.runs]
    assert len(slots) == expected
    assert slots == {"none": [], "latest": [15], "all": [11, 12, 13, 14, 15]}[catchup]


@pytest.mark.parametrize("catchup", ["none", "latest", "all"])
def test_a_scheduler_that_stays_up_runs_every_slot_once(tmp_path: Path, catchup: Catchup) -> None:
    clock, launches = FakeClock(T0), Launches()
    keeper = scheduler([job(tmp_path, catchup)], clock, launches)
    keeper.start()
    for _ in range(3):  # wake one second after each slot, as run_forever does
        clock.moment = clock.moment.replace(minute=0, second=1) + timedelta(hours=1)
        keeper.tick()
        keeper.tick()  # a second tick at the same moment starts nothing more
    keeper.close()
    assert [slot.hour for _, slot in launches.runs] == [11, 12, 13]


def test_a_first_start_waits_for_the_next_slot(tmp_path: Path) -> None:
    clock, launches = FakeClock(T0 + timedelta(minutes=59)), Launches()
    keeper = scheduler([job(tmp_path, "all")], clock, launches)
    keeper.start()
    keeper.tick()
    assert launches.runs == []
    clock.sleep(60)
    keeper.tick()
    keeper.close()
    assert [slot.hour for _, slot in launches.runs] == [11]


def test_slots_due_during_a_long_run_wait_and_follow_the_policy(tmp_path: Path) -> None:
    clock, launches = FakeClock(T0), Launches(keep_running=True)
    keeper = scheduler([job(tmp_path, "latest")], clock, launches)
    keeper.start()
    clock.moment += timedelta(hours=1)
    keeper.tick()
    assert len(launches.runs) == 1
    clock.moment += timedelta(hours=3)  # the 11:00 run is still going at 12, 13 and 14
    keeper.tick()
    assert len(launches.runs) == 1  # never two runs of one pipeline at once
    launches.handles[0].ended = True
    launches.keep_running = False
    keeper.tick()
    keeper.close()
    assert [slot.hour for _, slot in launches.runs] == [11, 14]  # 12 and 13 coalesced


def test_runs_of_one_project_start_one_at_a_time(tmp_path: Path) -> None:
    clock, launches = FakeClock(T0), Launches(keep_running=True)
    jobs = [job(tmp_path, "latest", "a"), job(tmp_path, "latest", "b")]
    keeper = scheduler(jobs, clock, launches)
    keeper.start()
    clock.moment += timedelta(hours=1)
    keeper.tick()
    assert [name for name, _ in launches.runs] == ["a"]
    launches.handles[0].ended = True
    keeper.tick()
    assert [name for name, _ in launches.runs] == ["a", "b"]
    keeper.stop()  # interrupts b, which rolls back
    keeper.close()
    assert launches.handles[1].signals


def test_none_runs_a_current_slot_but_not_a_stale_one() -> None:
    slot = T0.replace(second=0)
    assert slots_to_run("none", [slot], slot + timedelta(seconds=5)) == [slot]
    assert slots_to_run("none", [slot], slot + timedelta(minutes=10)) == []


FLOW = """
pipeline ticks {{
  target = local
  schedule = "{minute} * * * *"
  catchup = {catchup}
}}
transform one {{
  sql = "SELECT 1 AS x"
  materialize = table
}}
"""


@pytest.mark.parametrize(("catchup", "expected"), [("none", 0), ("latest", 1), ("all", 3)])
def test_flowc_schedule_once_catches_up_by_policy(
    tmp_path: Path, catchup: str, expected: int
) -> None:
    (tmp_path / "flow.toml").write_text(
        '[project]\nname = "t"\n[profiles.dev.local]\ntype = "duckdb"\npath = "w.duckdb"\n'
    )
    now = datetime.now(UTC)
    minute = (now.minute + 30) % 60  # hourly, half an hour from now: the slots are not current
    (tmp_path / "ticks.flow").write_text(FLOW.format(catchup=catchup, minute=minute))
    store = StateStore.open(tmp_path)  # as if the scheduler had been down for 3 hours
    store.set_last_slot("ticks", "dev", now - timedelta(hours=3))
    store.close()
    done = flowc("schedule", "--once", "ticks.flow", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    history = flowc("runs", "ticks.flow", cwd=tmp_path).stdout
    assert history.count("succeeded") == expected, history
