-- rpm-hist: the floor for an append that keeps history.  rpm-append (the
-- new message row and the conversation's version, on the conversations
-- 'h<size>' of the same tables) plus what the contract's history asks of
-- any implementation: the replaced version recorded in a history table
-- (bench.rpm_hist: its key and when it was replaced) and the versions
-- beyond 10 pruned, all in one statement.  No checksum, no retry memory,
-- no trigger: what chatpersist's append pays beyond this is the price of
-- those promises.
\set u :client_id + :nc * random(0, :users / :nc - 1)
WITH ins AS (
	INSERT INTO bench.rpm_msg (user_id, conversation_id, id, created_at, message)
	SELECT bench.uid(:u), 'h' || :s, n.id, (t.msg->>'created_at')::bigint,
		   jsonb_set(t.msg, '{id}', to_jsonb(n.id))
	  FROM bench.new_message t, (SELECT gen_random_uuid()::text AS id) n
	RETURNING 1
), up AS (
	UPDATE bench.rpm_conv c
	   SET version = c.version + 1
	 WHERE c.user_id = bench.uid(:u) AND c.id = 'h' || :s
	RETURNING c.user_id, c.id, c.version
), archived AS (
	INSERT INTO bench.rpm_hist (user_id, conversation_id, version, replaced_at)
	SELECT user_id, id, version - 1, now() FROM up
)
DELETE FROM bench.rpm_hist h USING up
 WHERE h.user_id = up.user_id AND h.conversation_id = up.id
   AND h.version <= up.version - 11;
