-- BigQuery has no DISTINCT ON (sqlglot's rewrite drops the ORDER BY and limits too early);
-- on Postgres the text keys sort by code point as on DuckDB.
SELECT DISTINCT ON (city) city, id, name
FROM people
ORDER BY city, id DESC
LIMIT 5
