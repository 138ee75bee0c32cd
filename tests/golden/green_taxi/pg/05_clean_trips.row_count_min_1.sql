-- clean_trips.row_count(min = 1): check step on `warehouse` (postgres)

SELECT
  "_rows" AS "row_count",
  1 AS "_failures"
FROM (
  SELECT
    COUNT(*) AS "_rows"
  FROM "clean_trips"
) AS "_counted"
WHERE
  "_rows" < 1;
