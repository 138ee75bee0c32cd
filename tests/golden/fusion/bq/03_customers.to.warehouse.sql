-- customers.to.warehouse: transfer step on `local` (duckdb)

SELECT
  *
FROM "customers";
