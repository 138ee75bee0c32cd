-- refuses: bigquery F0308
-- refuses: bigquery F0308
-- BigQuery has no exact median or mode aggregate.
SELECT mode(person_id) AS usual, median(qty) AS middle FROM orders WHERE person_id <> 5
