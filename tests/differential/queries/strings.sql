SELECT order_id,
  contains(note, 'o') AS has_o,
  contains(status, 'SHIP') AS shouting,
  starts_with(status, 'sh') AS sh,
  ends_with(status, 'ed') AS ed,
  split_part(note, ' ', 2) AS second_word,
  split_part(note, ' ', 9) AS ninth_word,
  array_to_string(string_split(note, ' '), '|') AS words,
  len(string_split(note, ' ')) AS word_count,
  upper(note) AS up,
  length(note) AS chars,
  strpos(note, 'o') AS first_o
FROM orders
