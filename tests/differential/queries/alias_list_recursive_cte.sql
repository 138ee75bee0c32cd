WITH RECURSIVE steps (i, total) AS (
  SELECT 1, 1
  UNION ALL
  SELECT i + 1, total + i + 1 FROM steps WHERE i < 5
)
SELECT i, total FROM steps ORDER BY i
