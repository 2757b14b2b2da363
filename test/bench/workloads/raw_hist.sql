-- raw-hist: the floor for a save that keeps history.  The raw UPDATE,
-- plus archiving the replaced row (its stored, compressed value copied as
-- it is) and pruning the versions beyond 10, in one statement: the writes
-- the contract's history asks of any implementation, and nothing else.
\set u :client_id + :nc * random(0, :users / :nc - 1)
WITH old AS (
	SELECT c.user_id, c.id, c.version, c.messages
	  FROM bench.rawh_conv c
	 WHERE c.user_id = bench.uid(:u) AND c.id = 'c' || :s
	   FOR UPDATE
), archived AS (
	INSERT INTO bench.rawh_history (user_id, conversation_id, version, messages)
	SELECT user_id, id, version, messages FROM old
), pruned AS (
	DELETE FROM bench.rawh_history h USING old
	 WHERE h.user_id = old.user_id AND h.conversation_id = old.id
	   AND h.version <= old.version - 10
)
UPDATE bench.rawh_conv r
   SET messages = (SELECT p.arr FROM bench.payload p
					WHERE p.size = :s AND p.k = (old.version + 1) % 4),
	   version = old.version + 1
  FROM old
 WHERE r.user_id = old.user_id AND r.id = old.id AND r.version = old.version;
