-- sql/include/apply_delta.sql: the client's algorithm of docs/sync.md for
-- messages_since, written once for the tests that check its answers
-- (test/delta_props.sh includes it with \i, test/fuzz/fuzz.py runs it
-- before driver.sql).  pg_temp.apply_delta(arr, changes): drop every id
-- the changes name, then insert each entry's message after its "after"
-- (null: first).  NULL when an entry follows a message the array does not
-- have.
CREATE OR REPLACE FUNCTION pg_temp.apply_delta(arr jsonb, changes jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	named text[];
	msgs jsonb[];
	ids text[];
	e jsonb;
	at int;
BEGIN
	SELECT coalesce(array_agg(x ->> 'id'), '{}') INTO named FROM jsonb_array_elements(changes) x;
	SELECT coalesce(array_agg(m ORDER BY o), '{}'), coalesce(array_agg(m ->> 'id' ORDER BY o), '{}')
	  INTO msgs, ids
	  FROM jsonb_array_elements(arr) WITH ORDINALITY t (m, o)
	 WHERE NOT (m ->> 'id' = ANY (named));
	FOR e IN SELECT x FROM jsonb_array_elements(changes) WITH ORDINALITY t (x, o)
			  WHERE x ? 'message' ORDER BY o LOOP
		at := CASE WHEN jsonb_typeof(e -> 'after') = 'null' THEN 0
				   ELSE array_position(ids, e ->> 'after') END;
		IF at IS NULL THEN
			RETURN NULL;
		END IF;
		msgs := msgs[1:at] || (e -> 'message') || msgs[at + 1:];
		ids := ids[1:at] || (e ->> 'id') || ids[at + 1:];
	END LOOP;
	RETURN to_jsonb(msgs);
END
$$;
