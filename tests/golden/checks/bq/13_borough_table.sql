-- borough_table: export step on `local` (bigquery)

CREATE SCHEMA IF NOT EXISTS `reports`;

CREATE OR REPLACE TABLE `reports`.`per_borough` AS
SELECT
  *
FROM `per_borough`;
