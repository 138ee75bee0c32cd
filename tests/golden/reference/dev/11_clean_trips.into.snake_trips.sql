-- clean_trips.into.snake_trips: transfer step on `warehouse` (postgres)

SELECT
  *
FROM "clean_trips";
