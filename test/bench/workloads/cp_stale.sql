-- cp-stale: chatpersist.save_conversation, expected version one behind:
-- the three-way merge against that version from history
\set u :client_id + :nc * random(0, :users / :nc - 1)
SELECT r.status
  FROM chatpersist.conversations c
	   JOIN bench.payload p ON p.size = :s AND p.k = (c.version + 2) % 4,
	   LATERAL chatpersist.save_conversation(c.user_id, c.id, NULL, p.arr, false, c.version - 1) r
 WHERE c.user_id = bench.uid(:u) AND c.id = 'c' || :s;
