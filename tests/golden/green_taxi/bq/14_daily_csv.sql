-- daily_csv: export step on `warehouse` (bigquery)

SELECT
  *
FROM `daily_stats`;
