-- cp-append-new: chatpersist.append_messages of one new message (the
-- message of rpm-append, bench.new_message with a fresh id), on the
-- conversations 'a<size>' (cost.sql); the conversation grows by one
-- message, run.sh --cost resets it after each run
\set u :client_id + :nc * random(0, :users / :nc - 1)
SELECT r.status
  FROM bench.new_message t,
	   LATERAL chatpersist.append_messages(bench.uid(:u), 'a' || :s,
			jsonb_build_array(jsonb_set(t.msg, '{id}', to_jsonb(gen_random_uuid()::text)))) r;
