-- DuckDB's greatest/least skip NULLs; BigQuery's would be NULL.
SELECT id, greatest(score, 0) AS g, least(score, CAST(balance AS DOUBLE)) AS l,
  greatest(NULL::INTEGER, NULL::INTEGER) AS both_null
FROM people
