-- cp-append: chatpersist.append_messages of one message (the one edited
-- message, by id, so the size stays fixed; a new id takes the same path)
\set u :client_id + :nc * random(0, :users / :nc - 1)
SELECT r.status
  FROM chatpersist.conversations c
	   JOIN bench.append_payload p ON p.size = :s AND p.k = (c.version + 1) % 4,
	   LATERAL chatpersist.append_messages(c.user_id, c.id, p.arr) r
 WHERE c.user_id = bench.uid(:u) AND c.id = 'c' || :s;
