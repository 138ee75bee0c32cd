-- daily_csv: export step on `warehouse` (postgres)

SELECT
  *
FROM "daily_stats";
