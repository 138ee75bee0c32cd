"""The parse and lower stages: every value kind, spans, raw strings, friendly syntax errors."""

from __future__ import annotations

import pytest
from flowc.compiler import ir
from flowc.compiler.syntax.parser import parse


def only_block(text: str) -> ir.Block:
    document, diagnostics = parse(text, "t.flow")
    assert list(diagnostics) == []
    assert len(document.blocks) == 1
    return document.blocks[0]


def attribute(text: str) -> ir.Value:
    entry = only_block("pipeline p {\n  a = " + text + "\n}\n").entries[0]
    assert isinstance(entry, ir.Attribute)
    return entry.value


def codes(text: str) -> list[tuple[str, str]]:
    _, diagnostics = parse(text, "t.flow")
    return [(d.code, d.span.start_text()) for d in diagnostics.sorted()]


def test_every_value_kind() -> None:
    assert attribute('"a \\"b\\" \\n"').value == 'a "b" \n'  # type: ignore[union-attr]
    assert isinstance(attribute("42"), ir.Num) and attribute("42").value == 42  # type: ignore[union-attr]
    assert attribute("3.5").value == 3.5  # type: ignore[union-attr]
    assert attribute("-1").value == -1  # type: ignore[union-attr]
    assert attribute("true").value is True  # type: ignore[union-attr]
    assert attribute("false").value is False  # type: ignore[union-attr]
    assert isinstance(attribute("null"), ir.Null)
    assert isinstance(attribute("warehouse"), ir.Ref)
    assert attribute("other.col").dotted == "other.col"  # type: ignore[union-attr]


def test_string_escapes() -> None:
    value = attribute('"tab\\there \\"q\\" \\\\ \\u00e9"')
    assert isinstance(value, ir.Str)
    assert value.value == 'tab\there "q" \\ é'


def test_list_with_trailing_comma_and_map_with_newlines() -> None:
    value = attribute('[a, "b", 3,]')
    assert isinstance(value, ir.ListValue)
    assert [type(i).__name__ for i in value.items] == ["Ref", "Str", "Num"]
    mapping = attribute('{ x = 1\n  "y z" = [1, 2], w = null }')
    assert isinstance(mapping, ir.MapValue)
    assert [e.key for e in mapping.entries] == ["x", "y z", "w"]


def test_call_with_positional_and_keyword_arguments() -> None:
    value = attribute('csv("data/x.csv", header = true, delimiter = ";")')
    assert isinstance(value, ir.Call)
    assert value.name == "csv"
    assert [a.value for a in value.args] == ["data/x.csv"]  # type: ignore[union-attr]
    assert [(k.name, k.value.value) for k in value.keywords] == [  # type: ignore[union-attr]
        ("header", True),
        ("delimiter", ";"),
    ]


def test_declarations_with_types_and_not_null() -> None:
    block = only_block(
        "source s {\n  columns {\n    a int  b decimal(10, 2) not null\n"
        "    nothing varchar\n  }\n}\n"
    )
    columns = block.entries[0]
    assert isinstance(columns, ir.SubBlock)
    decls = [e for e in columns.entries if isinstance(e, ir.Decl)]
    assert [(d.name, d.type.text, d.not_null) for d in decls] == [
        ("a", "int", False),
        ("b", "decimal(10, 2)", True),
        ("nothing", "varchar", False),
    ]


def test_comments_are_ignored_but_not_inside_strings() -> None:
    value = attribute('"a # b"  # a comment')
    assert isinstance(value, ir.Str)
    assert value.value == "a # b"


def test_raw_string_is_dedented_and_maps_back_to_the_file() -> None:
    text = 'transform t {\n  sql = """\n    SELECT a\n      FROM b\n  """\n}\n'
    entry = only_block(text).entries[0]
    assert isinstance(entry, ir.Attribute) and isinstance(entry.value, ir.Str)
    value = entry.value
    assert value.value == "SELECT a\n  FROM b\n"
    # "FROM" starts at offset 11 of the value: line 4, column 7 of the file.
    segment = max((s for s in value.segments if s.offset <= 11), key=lambda s: s.offset)
    assert (segment.line, segment.col + 11 - segment.offset) == (4, 7)


def test_one_line_raw_string() -> None:
    value = attribute('"""SELECT "x" FROM t"""')
    assert isinstance(value, ir.Str)
    assert value.value == 'SELECT "x" FROM t'
    assert value.segments[0].col == 10  # `  a = """` puts the S at column 10


def test_spans_are_one_based_and_end_exclusive() -> None:
    block = only_block("source trips {\n  from = x\n}\n")
    assert block.kind_span.start_text() == "1:1"
    assert (block.name_span.col, block.name_span.end_col) == (8, 13)
    entry = block.entries[0]
    assert isinstance(entry, ir.Attribute)
    assert entry.name_span.start_text() == "2:3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('pipeline p {\n  a = "abc\n}\n', [("F0102", "2:7")]),
        ('pipeline p {\n  a = """abc\n}\n', [("F0103", "2:7")]),
        ("pipeline p {\n  a = 1\n", [("F0104", "2:8")]),
        ("pipeline p {\n}\n}\n", [("F0108", "3:1")]),
        ("pipeline p {\n  a = f(1))\n}\n", [("F0101", "2:11")]),
        ("pipeline p {\n  a = 1 ;\n}\n", [("F0106", "2:9")]),
        ('pipeline p {\n  a = "\\q"\n}\n', [("F0105", "2:8")]),
        ("pipeline p {\n  a = f(x = 1, 2)\n}\n", [("F0213", "2:16")]),
    ],
)
def test_syntax_errors_point_at_the_offending_text(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert codes(text) == expected


def test_unclosed_block_names_the_block_and_where_it_opened() -> None:
    _, diagnostics = parse('pipeline p {\n}\nsource trips {\n  from = csv("x")\n', "t.flow")
    (diagnostic,) = list(diagnostics)
    assert diagnostic.message == "expected `}` to close `source trips` opened at 3:1"


def test_missing_equals_names_what_was_expected() -> None:
    _, diagnostics = parse('pipeline p {\n  description "x"\n}\n', "t.flow")
    (diagnostic,) = list(diagnostics)
    assert diagnostic.message == "unexpected string; expected `(`, `=`, `{` or a name"
    assert diagnostic.hint == "attributes are written `name = value`"


def test_independent_syntax_errors_in_separate_blocks_are_all_reported() -> None:
    text = "pipeline p {\n  a = \n}\nsource s {\n  b = ]\n}\nsink k {\n  c = 1 1\n}\n"
    assert [code for code, _ in codes(text)] == ["F0101", "F0101", "F0101"]
    document, _ = parse(text, "t.flow")
    assert document.blocks == ()


def test_blocks_after_a_broken_one_are_still_parsed() -> None:
    document, diagnostics = parse("pipeline p {\n  a = \n}\nsource s {\n  b = 1\n}\n", "t.flow")
    assert len(diagnostics) == 1
    assert [b.name for b in document.blocks] == ["s"]
