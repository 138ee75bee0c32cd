-- DuckDB sorts and compares text by code point; Postgres by its collation (en_US: 'ann'
-- before 'Ann', 'Émile' among the E's).
SELECT name, city, name > 'B' AS after_b, max(city) OVER () AS last_city
FROM people
WHERE name IS NOT NULL
ORDER BY name, id
