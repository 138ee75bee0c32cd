-- enriched.unique(CustomerID): check step on `warehouse` (duckdb)

SELECT
  "CustomerID",
  COUNT(*) AS "_count",
  COUNT(*) OVER () AS "_failures"
FROM "enriched"
GROUP BY
  "CustomerID"
HAVING
  COUNT(*) > 1
LIMIT 5;
