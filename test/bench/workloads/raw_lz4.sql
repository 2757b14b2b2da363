-- raw-lz4: raw's hand-written compare-and-swap UPDATE of the whole array
-- (one message edited), on a copy of its table whose messages column is
-- SET COMPRESSION lz4 (setup.sql), the compression chatpersist's columns
-- use: the floor without the difference of compressor.
\set u :client_id + :nc * random(0, :users / :nc - 1)
UPDATE bench.raw_lz4_conv r
   SET messages = (SELECT p.arr FROM bench.payload p
					WHERE p.size = :s AND p.k = (r.version + 1) % 4),
	   version = r.version + 1
 WHERE r.user_id = bench.uid(:u) AND r.id = 'c' || :s
   AND r.version = (SELECT c.version FROM bench.raw_lz4_conv c
					 WHERE c.user_id = bench.uid(:u) AND c.id = 'c' || :s);
