"""Stage 4, codegen: SQL text in each target's dialect, through sqlglot and the dialect rewrites."""
