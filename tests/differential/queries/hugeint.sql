-- refuses: bigquery F0308 3:22
-- BigQuery has no 128-bit integer.
SELECT sum(CAST(b AS HUGEINT)) AS total FROM numbers
