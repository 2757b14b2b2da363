-- pl-stale: the PL/pgSQL save, expected version one behind (merge path)
\set u :client_id + :nc * random(0, :users / :nc - 1)
SELECT r.status
  FROM bench.pl_conv c
	   JOIN bench.payload p ON p.size = :s AND p.k = (c.version + 2) % 4,
	   LATERAL bench.pl_save_conversation(c.user_id, c.id, NULL, p.arr, false, c.version - 1) r
 WHERE c.user_id = bench.uid(:u) AND c.id = 'c' || :s;
