-- Lists as values: Postgres arrays and BigQuery ARRAYs reach a Parquet sink as lists, not text.
-- (BigQuery refuses a NULL element in a result array at run time, which its reference says.)
SELECT id,
  string_split(name, 'n') AS parts,
  [id, 2 * id] AS ids,
  [id * 0.5] AS halves,
  [id > 2, id > 5] AS flags
FROM people
WHERE name IS NOT NULL
ORDER BY id
