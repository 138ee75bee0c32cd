-- zones.accepted_values(borough, ["Manhattan", "it's", "back\\slash"]): check step on `local` (duckdb)

SELECT
  *,
  COUNT(*) OVER () AS "_failures"
FROM "zones"
WHERE
  NOT "borough" IS NULL
  AND NOT "borough" IN ($flowc_value_1, $flowc_value_2, $flowc_value_3)
LIMIT 5;
