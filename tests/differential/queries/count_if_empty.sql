-- count_if of no rows is NULL on DuckDB (BigQuery's COUNTIF would be 0).
SELECT count_if(score > 0) AS positive, count(*) AS n, log(1000) AS three
FROM people
WHERE id > 100
