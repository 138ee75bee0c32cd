-- len of a list, list aggregates, list_contains: Postgres arrays and BigQuery ARRAYs.
SELECT id,
  len(string_split(name, 'n')) AS parts,
  array_length([]::INTEGER[]) AS empty_,
  list_sum([id, 2 * id, NULL]) AS total,
  list_aggregate([id, 2 * id], 'max') AS biggest,
  list_avg([id, 2 * id]) AS mean,
  list_count([id, NULL]) AS counted,
  list_contains([1, 2, 3], id) AS small
FROM people
WHERE name IS NOT NULL
