-- green_files: export step on `warehouse` (postgres)

SELECT
  *
FROM "snake_trips";
