SELECT id,
  regexp_full_match(name, '[A-Z].*') AS capitalised,
  name SIMILAR TO '.*n' AS ends_n,
  name NOT SIMILAR TO 'A.*' AS not_a,
  regexp_matches(name, 'o') AS has_o,
  regexp_replace(name, '[aeiou]', '_', 'g') AS vowels,
  regexp_replace(name, '^[A-Z]', '*') AS first_capital,
  regexp_replace(name, 'N', '#', 'gi') AS any_n,
  regexp_extract(name, '([A-Z])', 1) AS capital,
  regexp_extract(name, '[aeiou]+') AS vowel_run
FROM people
