-- concat_ws skips NULL parts (BigQuery has no concat_ws).
SELECT order_id, concat_ws('/', status, person_id, note) AS joined FROM orders
