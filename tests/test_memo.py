"""The language server's memo never changes an answer: analysing a spec after an edit with
the memo of the text before gives exactly the diagnostics (and checked spec) of a fresh
analysis, for mutations of every example and broken-corpus spec."""

from __future__ import annotations

import test_fuzz
from flowc.compiler import ir
from flowc.compiler.diagnostics import Diagnostic, Diagnostics
from flowc.compiler.driver.check import analyze
from flowc.compiler.driver.memo import Memo
from hypothesis import given, settings

POOL = test_fuzz.SPECS + test_fuzz.CORPUS


def _analyse(
    text: str, seed: test_fuzz.Seed, memo: Memo | None
) -> tuple[ir.Spec, list[Diagnostic]]:
    found = Diagnostics()
    analysis = analyze(text, seed.file, test_fuzz.scope_for(seed.root), found, memo=memo)
    return analysis.spec, found.sorted()


@settings(max_examples=200)
@given(mutant=test_fuzz.mutants(POOL, 3))
def test_an_edit_analysed_with_the_memo_matches_a_fresh_analysis(
    mutant: tuple[test_fuzz.Seed, str],
) -> None:
    seed, edited = mutant
    memo = Memo()
    _analyse(seed.text, seed, memo)
    assert _analyse(edited, seed, memo) == _analyse(edited, seed, None)
    assert _analyse(seed.text, seed, memo) == _analyse(seed.text, seed, None)


def test_unchanged_blocks_are_reused() -> None:
    seed = next(s for s in test_fuzz.SPECS if s.file.endswith("green_taxi/specs/green_taxi.flow"))
    memo = Memo()
    _analyse(seed.text, seed, memo)
    bound = dict(memo.bound)
    edited = seed.text.replace("trip_distance > 0", "trip_distance > 1")
    assert _analyse(edited, seed, memo) == _analyse(edited, seed, None)
    # one block changed: every other node is the very object bound before
    assert len(set(memo.bound) - set(bound)) == 1
