SELECT *
FROM trips
WHERE amount >= :min_amount
