/*-------------------------------------------------------------------------
 *
 * pginternals.h
 *	  The pieces of PostgreSQL's internals that chatpersist copies, in one
 *	  place, each marked with what it copies and why.
 *
 * A copy of server code must follow the server: when a major version
 * changes one of the originals, its copy here changes with it (and
 * compat.h takes the #if).  Everything else in chatpersist uses only what
 * the server exports.  The copies:
 *
 *	- the binary layout of a jsonb container (utils/jsonb.h documents it;
 *	  the functions that read it in src/backend/utils/adt/jsonb_util.c are
 *	  static): where a container's children's data start, where one child
 *	  starts, a child as a JsonbValue, and the JEntry of an array element.
 *	  Why: the hot paths (checksum, message parsing, building merged
 *	  arrays) walk containers directly; the jsonb iterator pallocs a frame
 *	  per container and copies every token, which cost as much as all the
 *	  rest of a checksum, and getKeyJsonValueFromContainer binary-searches
 *	  the keys once per field.
 *	- NOTIFY's payload limit (NOTIFY_PAYLOAD_MAX_LENGTH of
 *	  src/backend/commands/async.c, not exported), to assert that a
 *	  notification always fits.
 *
 * Not copies, but reimplementations of server output that must match it
 * byte for byte, kept apart for the same reason and fuzzed against naive
 * references (test/fuzz/run_canon_fuzz.sh): src/canon.h (escape_json's
 * escapes, numeric_out's digits).
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/pginternals.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHATPERSIST_PGINTERNALS_H
#define CHATPERSIST_PGINTERNALS_H

#include "utils/jsonb.h"
#include "utils/numeric.h"

/*
 * Where the children's data of container jc start: after the header word
 * and one JEntry per child (an object has a JEntry per key, then one per
 * value, in the same order).
 * Copies: the layout read by jsonb_util.c's getIthJsonbValueFromContainer
 * and getKeyJsonValueFromContainer.
 */
static inline const char *
cp_jsonb_children_data(const JsonbContainer *jc)
{
	uint32		count = JsonContainerSize(jc);

	return (const char *) &jc->children[JsonContainerIsObject(jc) ? count * 2 : count];
}

/*
 * Where a child whose data run from start to end (offsets from the
 * children's data, as JBE_ADVANCE_OFFSET computes them) begins: a numeric
 * or a container starts at the next 4-byte boundary, a string at start.
 * Copies: fillJsonbValue of jsonb_util.c (static there).
 */
static inline const char *
cp_jsonb_child_start(JEntry entry, const char *data, uint32 start)
{
	return (JBE_ISNUMERIC(entry) || JBE_ISCONTAINER(entry)) ?
		data + INTALIGN(start) : data + start;
}

/*
 * The JsonbValue of a child, pointing into the container (nothing copied).
 * Copies: fillJsonbValue of jsonb_util.c (static there).
 */
static inline void
cp_jsonb_fill_value(JsonbValue *v, JEntry entry, const char *data,
					uint32 start, uint32 end)
{
	switch (entry & JENTRY_TYPEMASK)
	{
		case JENTRY_ISSTRING:
			v->type = jbvString;
			v->val.string.val = (char *) data + start;
			v->val.string.len = end - start;
			break;
		case JENTRY_ISNUMERIC:
			v->type = jbvNumeric;
			v->val.numeric = (Numeric) (data + INTALIGN(start));
			break;
		case JENTRY_ISBOOL_TRUE:
		case JENTRY_ISBOOL_FALSE:
			v->type = jbvBool;
			v->val.boolean = JBE_ISBOOL_TRUE(entry);
			break;
		case JENTRY_ISNULL:
			v->type = jbvNull;
			break;
		default:
			Assert(JBE_ISCONTAINER(entry));
			v->type = jbvBinary;
			v->val.binary.data = (JsonbContainer *) (data + INTALIGN(start));
			v->val.binary.len = end - INTALIGN(start);
			break;
	}
}

/*
 * The JEntry of element i of an array of containers, whose data end at
 * offset end and which is len bytes long (its alignment padding included):
 * every JB_OFFSET_STRIDE'th element stores its end offset, the others
 * their length.
 * Copies: convertJsonbArray of jsonb_util.c (static there).
 */
static inline JEntry
cp_jsonb_container_entry(int i, uint32 end, uint32 len)
{
	if ((i % JB_OFFSET_STRIDE) == 0)
		return JENTRY_ISCONTAINER | JENTRY_HAS_OFF | end;
	return JENTRY_ISCONTAINER | len;
}

/*
 * The longest payload NOTIFY accepts.
 * Copies: NOTIFY_PAYLOAD_MAX_LENGTH of src/backend/commands/async.c.
 */
#define CP_NOTIFY_PAYLOAD_MAX	(BLCKSZ - NAMEDATALEN - 128)

#endif							/* CHATPERSIST_PGINTERNALS_H */
