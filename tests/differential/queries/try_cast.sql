-- refuses: postgres F0308 3:11
-- Postgres has no try_cast: a cast of text that may fail is refused, one that cannot kept.
SELECT n, try_cast(s AS INTEGER) AS parsed, try_cast(n AS VARCHAR) AS n_text FROM numbers
