-- DuckDB writes a whole double as 2.0 and a decimal with its scale (100.50).
SELECT n, CAST(x AS VARCHAR) AS x_text, CAST(d AS VARCHAR) AS d_text, CAST(n AS VARCHAR) AS n_text
FROM numbers
WHERE abs(x) < 1e15
