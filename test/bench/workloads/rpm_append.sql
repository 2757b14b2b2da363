-- rpm-append: the hand-written row-per-message write, the baseline of
-- issue 13's cost targets (cost.sql): one new message row and the
-- conversation's version, in one statement (one round trip, like a
-- function call).  The message is bench.new_message with a fresh id.
\set u :client_id + :nc * random(0, :users / :nc - 1)
WITH ins AS (
	INSERT INTO bench.rpm_msg (user_id, conversation_id, id, created_at, message)
	SELECT bench.uid(:u), 'c' || :s, n.id, (t.msg->>'created_at')::bigint,
		   jsonb_set(t.msg, '{id}', to_jsonb(n.id))
	  FROM bench.new_message t, (SELECT gen_random_uuid()::text AS id) n
	RETURNING 1
)
UPDATE bench.rpm_conv c
   SET version = c.version + 1
 WHERE c.user_id = bench.uid(:u) AND c.id = 'c' || :s;
