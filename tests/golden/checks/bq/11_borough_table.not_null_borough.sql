-- borough_table.not_null(borough): check step on `local` (bigquery)

SELECT
  *,
  COUNT(*) OVER () AS `_failures`
FROM `per_borough`
WHERE
  `borough` IS NULL
LIMIT 5;
