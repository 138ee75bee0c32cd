-- borough_table.unique(borough): check step on `local` (duckdb)

SELECT
  "borough",
  COUNT(*) AS "_count",
  COUNT(*) OVER () AS "_failures"
FROM "per_borough"
GROUP BY
  "borough"
HAVING
  COUNT(*) > 1
LIMIT 5;
