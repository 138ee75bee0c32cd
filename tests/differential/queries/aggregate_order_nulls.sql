SELECT string_agg(name, ',' ORDER BY city, id) AS names,
  string_agg(city, '|' ORDER BY born DESC, id) AS cities
FROM people
