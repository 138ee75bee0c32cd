-- refuses: bigquery F0308 3:12
-- BigQuery replaces every match; DuckDB without 'g' only the first.
SELECT id, regexp_replace(name, '[aeiou]', '_') AS first_vowel FROM people
