-- regions_csv: export step on `local` (duckdb)

SELECT
  *
FROM "region_copy";
