-- enriched.to.local: transfer step on `warehouse` (duckdb)

SELECT
  *
FROM "enriched";
