"""flowc's runtime: the building blocks the plan executor calls.

- `engine`: the small `Engine` interface; `engines/duckdb`: the embedded default adapter.
- `sources` (files), `download` (`http(...)`): Arrow batch streams, declared columns enforced
  by `columns`.
- `pyblocks`, `userpy`: Python transforms and sources, with the user's own tracebacks.
- `sinks`: Parquet, CSV and table outputs, all-or-nothing.
- `state`: the run history in `.flowc/state.db`.
- `executor`: carries out a plan (`flowc run`), all or nothing per run.
- `errors`: `StepError` and `DataError`, the user-facing failures of a step.

The runtime may import `flowc.compiler`; the compiler never imports the runtime.
"""
