-- by_region.to.local: transfer step on `warehouse` (bigquery)

SELECT
  *
FROM `by_region`;
