-- cp-load: chatpersist.load_conversation of one conversation, every
-- column to the client (the messages as JSON text, as a device reloads)
\set u :client_id + :nc * random(0, :users / :nc - 1)
SELECT * FROM chatpersist.load_conversation(bench.uid(:u), 'c' || :s);
