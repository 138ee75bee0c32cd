-- zones.accepted_values(borough, ["Manhattan", "it's", "back\\slash"]): check step on `local` (postgres)

SELECT
  *,
  COUNT(*) OVER () AS "_failures"
FROM "zones"
WHERE
  NOT "borough" IS NULL
  AND NOT "borough" IN (
    %(flowc_value_1)s,
    %(flowc_value_2)s,
    %(flowc_value_3)s
  )
LIMIT 5;
