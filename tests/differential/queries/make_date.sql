SELECT id, make_date(year(born), month(born), 1) AS month_start, make_date(2020, 2, 29) AS leap
FROM people
WHERE born IS NOT NULL
