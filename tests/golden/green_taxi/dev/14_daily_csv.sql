-- daily_csv: export step on `warehouse` (duckdb)

SELECT
  *
FROM "daily_stats";
