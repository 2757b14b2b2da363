-- test/bench/plpgsql_save.sql
--
-- The save contract of chatpersist.save_conversation written in PL/pgSQL
-- the way an application developer would: the thing to beat.  Same
-- arguments and result; the row is locked FOR UPDATE, the expected version
-- compared; an equal version replaces the array, a stale one merges it
-- three-way against the version in history (bench.sql_merge, with
-- jsonb_array_elements); the checksum is md5 of the text; the replaced
-- version goes to a history table pruned to the last 10 versions.
-- Validation is the usual jsonb_array_elements pass (array of objects with
-- a string id, ids unique).  Tables use PostgreSQL's default storage, as a
-- developer's would.  Conflicts are not counted (0).
--
-- Needs bench.sql_merge (sql_merge.sql).
--
-- Copyright (c) 2026, chatpersist developers

CREATE TABLE bench.pl_conv (
	user_id			uuid NOT NULL,
	id				text NOT NULL,
	title			text NOT NULL DEFAULT '',
	messages		jsonb NOT NULL DEFAULT '[]',
	metadata		jsonb NOT NULL DEFAULT '{}',
	version			bigint NOT NULL,
	checksum		text NOT NULL,
	message_count	integer NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	last_modified	timestamptz NOT NULL DEFAULT now(),
	deleted			boolean NOT NULL DEFAULT false,
	PRIMARY KEY (user_id, id)
);

CREATE TABLE bench.pl_history (
	user_id			uuid NOT NULL,
	conversation_id	text NOT NULL,
	version			bigint NOT NULL,
	title			text NOT NULL,
	messages		jsonb NOT NULL,
	metadata		jsonb NOT NULL,
	checksum		text NOT NULL,
	message_count	integer NOT NULL,
	deleted			boolean NOT NULL,
	last_modified	timestamptz NOT NULL,
	replaced_at		timestamptz NOT NULL,
	replaced_by		text NOT NULL,
	PRIMARY KEY (user_id, conversation_id, version)
);

CREATE FUNCTION bench.pl_save_conversation(
	p_user_id uuid,
	p_conversation_id text,
	p_title text,
	p_messages jsonb,
	p_force_overwrite boolean DEFAULT false,
	p_expected_version bigint DEFAULT NULL,
	p_metadata jsonb DEFAULT NULL)
RETURNS chatpersist.save_result
LANGUAGE plpgsql
AS $$
DECLARE
	cur			bench.pl_conv;
	base		jsonb;
	result		jsonb;
	v_status	text;
	v_sum		text;
	v_n			integer;
	v_bad		integer;
	v_ids		integer;
	v_live		integer;
BEGIN
	IF p_user_id IS NULL OR p_conversation_id IS NULL OR p_messages IS NULL THEN
		RAISE EXCEPTION 'user, conversation id and messages must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF jsonb_typeof(p_messages) <> 'array' THEN
		RAISE EXCEPTION 'p_messages must be a JSON array of message objects'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	SELECT count(*),
		   count(*) FILTER (WHERE jsonb_typeof(e) <> 'object'
							   OR jsonb_typeof(e -> 'id') IS DISTINCT FROM 'string'),
		   count(DISTINCT e ->> 'id'),
		   count(*) FILTER (WHERE e ->> 'deleted' IS DISTINCT FROM 'true')
	  INTO v_n, v_bad, v_ids, v_live
	  FROM jsonb_array_elements(p_messages) AS x(e);
	IF v_bad > 0 OR v_ids <> v_n THEN
		RAISE EXCEPTION 'invalid message array'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	LOOP
		SELECT * INTO cur FROM bench.pl_conv c
		 WHERE c.user_id = p_user_id AND c.id = p_conversation_id
		   FOR UPDATE;
		EXIT WHEN FOUND;

		v_sum := md5(p_messages::text);
		INSERT INTO bench.pl_conv (user_id, id, title, messages, metadata,
								   version, checksum, message_count)
		VALUES (p_user_id, p_conversation_id, coalesce(p_title, ''), p_messages,
				coalesce(p_metadata, '{}'), 1, v_sum, v_live)
		ON CONFLICT DO NOTHING;
		IF FOUND THEN
			RETURN ROW('created', p_conversation_id, 1::bigint, v_sum, v_live, 0)::chatpersist.save_result;
		END IF;
	END LOOP;

	IF p_force_overwrite OR p_expected_version = cur.version THEN
		result := p_messages;
		v_status := CASE WHEN p_force_overwrite THEN 'overwritten' ELSE 'updated' END;
	ELSE
		SELECT h.messages INTO base FROM bench.pl_history h
		 WHERE h.user_id = p_user_id AND h.conversation_id = p_conversation_id
		   AND h.version = p_expected_version;
		result := bench.sql_merge(base, cur.messages, p_messages);
		v_status := 'merged';
		SELECT count(*) FILTER (WHERE e ->> 'deleted' IS DISTINCT FROM 'true')
		  INTO v_live FROM jsonb_array_elements(result) AS x(e);
	END IF;

	v_sum := md5(result::text);
	IF v_sum = cur.checksum AND coalesce(p_title, cur.title) = cur.title
	   AND coalesce(p_metadata, cur.metadata) = cur.metadata THEN
		RETURN ROW('unchanged', p_conversation_id, cur.version, cur.checksum,
				   cur.message_count, 0)::chatpersist.save_result;
	END IF;

	INSERT INTO bench.pl_history
	VALUES (cur.user_id, cur.id, cur.version, cur.title, cur.messages, cur.metadata,
			cur.checksum, cur.message_count, cur.deleted, cur.last_modified, now(),
			v_status);
	DELETE FROM bench.pl_history h
	 WHERE h.user_id = p_user_id AND h.conversation_id = p_conversation_id
	   AND h.version <= cur.version - 10;

	UPDATE bench.pl_conv c
	   SET title = coalesce(p_title, c.title),
		   messages = result,
		   metadata = CASE WHEN v_status = 'merged'
						   THEN c.metadata || coalesce(p_metadata, '{}')
						   ELSE coalesce(p_metadata, c.metadata) END,
		   version = c.version + 1,
		   checksum = v_sum,
		   message_count = v_live,
		   last_modified = now(),
		   deleted = false
	 WHERE c.user_id = p_user_id AND c.id = p_conversation_id;

	RETURN ROW(v_status, p_conversation_id, cur.version + 1, v_sum, v_live, 0)::chatpersist.save_result;
END
$$;

COMMENT ON FUNCTION bench.pl_save_conversation(uuid, text, text, jsonb, boolean, bigint, jsonb) IS
	'save_conversation written in PL/pgSQL, the benchmark''s thing to beat';
