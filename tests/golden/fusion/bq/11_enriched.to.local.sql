-- enriched.to.local: transfer step on `warehouse` (bigquery)

SELECT
  *
FROM `enriched`;
