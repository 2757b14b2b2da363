-- raw: the floor.  A hand-written compare-and-swap UPDATE of the whole
-- array (one message edited) on a plain table: the version the client
-- holds (read here, as every workload reads it), the next array S(v+1).
\set u :client_id + :nc * random(0, :users / :nc - 1)
UPDATE bench.raw_conv r
   SET messages = (SELECT p.arr FROM bench.payload p
					WHERE p.size = :s AND p.k = (r.version + 1) % 4),
	   version = r.version + 1
 WHERE r.user_id = bench.uid(:u) AND r.id = 'c' || :s
   AND r.version = (SELECT c.version FROM bench.raw_conv c
					 WHERE c.user_id = bench.uid(:u) AND c.id = 'c' || :s);
