-- clean_trips.into.snake_trips: transfer step on `warehouse` (duckdb)

SELECT
  *
FROM "clean_trips";
