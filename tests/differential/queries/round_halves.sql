-- Halves and near-halves: DuckDB computes round(x * 10^n) / 10^n in doubles, half away
-- from zero (1.005 is 1.00499999999999989... as a double: it rounds down).
SELECT v, round(v) AS r0, round(v, 1) AS r1, round(v, 2) AS r2, round(v, -1) AS r_1
FROM (
  SELECT CAST(v0 AS DOUBLE) AS v
  FROM (VALUES (0.5), (1.5), (2.5), (-2.5), (1.005), (0.125), (2.675), (-0.45), (15.0), (-25.0))
    AS t (v0)
)
