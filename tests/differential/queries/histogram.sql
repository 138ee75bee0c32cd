-- refuses: postgres F0308 3:8
-- refuses: bigquery F0308 3:8
SELECT histogram(city) AS h FROM people
