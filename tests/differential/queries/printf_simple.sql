SELECT id, printf('%d: %s (%s)', id, name, active) AS label, format('{}/{}', city, born) AS place,
  printf('100%% %s', name) AS percent
FROM people
