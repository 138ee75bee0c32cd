-- by_region.to.local: transfer step on `warehouse` (duckdb)

SELECT
  *
FROM "by_region";
