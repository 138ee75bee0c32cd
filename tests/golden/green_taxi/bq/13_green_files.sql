-- green_files: export step on `warehouse` (bigquery)

SELECT
  *
FROM `snake_trips`;
