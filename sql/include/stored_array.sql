-- sql/include/stored_array.sql: included (\i) by the regression files that
-- read a conversation's array from the tables.  Since 2.0 the array is no
-- column of chatpersist.conversations: it is the rows of chatpersist.messages
-- that are not removed, in pos order.  pg_temp.stored_array(user, conv)
-- rebuilds it as the 1.x column held it ('[]' when there are no such rows).
CREATE FUNCTION pg_temp.stored_array(p_user_id uuid, p_conversation_id text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]')
	FROM chatpersist.messages m
	WHERE m.user_id = p_user_id AND m.conversation_id = p_conversation_id AND NOT m.removed
$$;
