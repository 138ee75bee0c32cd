-- borough_table.check.1: check step on `local` (postgres)

SELECT
  *,
  COUNT(*) OVER () AS "_failures"
FROM "per_borough"
WHERE
  "borough" IS NULL
LIMIT 5;
