-- refuses: postgres F0308 4:1
-- refuses: bigquery F0308 4:1
SELECT n FROM numbers ORDER BY n
LIMIT 10%
