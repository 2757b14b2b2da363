-- rpm-load: the hand-written load of the row-per-message baseline
-- (cost.sql): the conversation's version and its messages as one array,
-- in their order
\set u :client_id + :nc * random(0, :users / :nc - 1)
SELECT c.version,
	   (SELECT jsonb_agg(m.message ORDER BY m.created_at, m.id)
		  FROM bench.rpm_msg m
		 WHERE m.user_id = c.user_id AND m.conversation_id = c.id) AS messages
  FROM bench.rpm_conv c
 WHERE c.user_id = bench.uid(:u) AND c.id = 'c' || :s;
