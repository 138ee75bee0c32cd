-- green_files: export step on `warehouse` (duckdb)

SELECT
  *
FROM "snake_trips";
