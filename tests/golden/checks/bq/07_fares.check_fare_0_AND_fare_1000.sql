-- fares.check("fare >= 0 AND fare < 1000"): check step on `local` (bigquery)
-- fused (ephemeral, inlined as CTEs): fares

WITH `fares` AS (
  SELECT
    `t`.`vendorid`,
    `t`.`zone_id`,
    `t`.`fare`,
    `t`.`order` AS `ord`,
    `z`.`borough`
  FROM `trips` AS `t`
  LEFT JOIN `zones` AS `z`
    USING (`zone_id`)
  WHERE
    `t`.`passenger_count` BETWEEN 1 AND 6
)
SELECT
  *,
  COUNT(*) OVER () AS `_failures`
FROM `fares`
WHERE
  NOT (
    `fare` >= 0 AND `fare` < 1000
  )
LIMIT 5;
