"""Stage 1, parse: .flow text to the syntax IR (Lark grammar, lowering), and the formatter."""
