-- DuckDB matches the columns by name and fills the missing ones with NULL.
SELECT n, x FROM numbers
UNION ALL BY NAME
SELECT m AS n, s FROM numbers
