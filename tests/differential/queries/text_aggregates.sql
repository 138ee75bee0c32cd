SELECT min(name) AS first_name, max(name) AS last_name,
  string_agg(name, ',' ORDER BY name) AS names, greatest('b', min(city)) AS g
FROM people
