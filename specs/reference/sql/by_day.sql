-- by_day: trips, passengers, fares and distances per pickup day, over clean_trips.
-- Postgres SQL, the dialect the pipeline declares (`dialect = "postgres"`).
SELECT
    lpep_pickup_date,
    COUNT(*) AS trips,
    SUM(passenger_count) AS passengers,
    SUM(fare_amount) AS total_fare,
    AVG(trip_distance) AS avg_distance
FROM clean_trips
GROUP BY lpep_pickup_date
