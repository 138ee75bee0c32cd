-- enriched.check.1: check step on `warehouse` (postgres)

SELECT
  "customerid",
  COUNT(*) AS "_count",
  COUNT(*) OVER () AS "_failures"
FROM "enriched"
GROUP BY
  "customerid"
HAVING
  COUNT(*) > 1
LIMIT 5;
