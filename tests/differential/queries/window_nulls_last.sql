-- DuckDB sorts NULLs last (ascending and descending); BigQuery's windows sort them first
-- ascending and take no NULLS LAST in most windows.
SELECT id,
  row_number() OVER (ORDER BY score) AS by_score,
  sum(balance) OVER (ORDER BY born ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running,
  rank() OVER (ORDER BY city DESC) AS by_city_desc,
  row_number() OVER (ORDER BY score DESC NULLS FIRST) AS nulls_first_desc,
  count(*) OVER (ORDER BY born NULLS FIRST) AS born_nulls_first
FROM people
