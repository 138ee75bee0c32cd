"""`flowc test`: test blocks on fixture rows, `--expect` on built data, and their reports."""
