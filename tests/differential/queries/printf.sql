-- refuses: postgres F0308 3:8
-- refuses: bigquery F0308 3:8
SELECT printf('%5.2f', score) AS padded FROM people
