/*-------------------------------------------------------------------------
 *
 * security.c
 *	  current_user_id(): the identity row-level security compares user_id
 *	  with.
 *
 * The caller's user id comes from, in this order:
 *	1. the setting chatpersist.user_id (an application that connects with
 *	   its own role and sets the user per transaction);
 *	2. the "sub" claim of request.jwt.claims, the JSON object PostgREST 9+
 *	   and Supabase set for each request;
 *	3. request.jwt.claim.sub, the setting older PostgREST versions set;
 *	4. else NULL, which matches no row.
 * An empty setting counts as unset.  A value that is set but malformed
 * (not a uuid, claims that are not a JSON object, a "sub" that is not a
 * string) is an error with SQLSTATE 22023, never a silent NULL: a typo in
 * a deployment must not look like "no rows".
 *
 * Every one of these settings can be changed by any session that can run
 * SQL, so the identity is as trustworthy as the path that sets it:
 * PostgREST sets the claims from a verified JWT and runs no other SQL for
 * the client.  See docs/supabase.md.
 *
 * Reads settings only; no locks, no shared state.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/security.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/uuid.h"

#include "chatpersist.h"
#include "compat.h"

static bool looks_like_uuid(const char *s);
static Datum uuid_from_setting(const char *value, const char *what);
static const char *sub_from_claims(const char *claims);

/*
 * current_user_id() RETURNS uuid
 *
 * The caller's user id for row-level security (see the file header), or
 * NULL.  Malformed settings raise 22023.
 */
PG_FUNCTION_INFO_V1(chatpersist_current_user_id);
Datum
chatpersist_current_user_id(PG_FUNCTION_ARGS)
{
	const char *v;

	v = GetConfigOption("chatpersist.user_id", true, false);
	if (v != NULL && v[0] != '\0')
		return uuid_from_setting(v, "chatpersist.user_id");

	v = GetConfigOption("request.jwt.claims", true, false);
	if (v != NULL && v[0] != '\0')
	{
		const char *sub = sub_from_claims(v);

		if (sub != NULL && sub[0] != '\0')
			return uuid_from_setting(sub, "the \"sub\" claim of request.jwt.claims");
	}

	v = GetConfigOption("request.jwt.claim.sub", true, false);
	if (v != NULL && v[0] != '\0')
		return uuid_from_setting(v, "request.jwt.claim.sub");

	PG_RETURN_NULL();
}

/*
 * What the one parse of the claims found (see sub_from_claims): whether the
 * root is an object, and the last top-level "sub" with the kind of its
 * value.
 */
typedef enum ClaimsSubKind
{
	SUB_ABSENT,
	SUB_NULL,
	SUB_STRING,
	SUB_OTHER					/* a number, boolean, object or array */
} ClaimsSubKind;

typedef struct ClaimsState
{
	JsonLexContext *lex;
	bool		root_is_object;
	bool		in_sub;			/* the current top-level field is "sub" */
	ClaimsSubKind sub_kind;
	char	   *sub;			/* de-escaped, when SUB_STRING */
} ClaimsState;

static CP_JSON_ACTION
claims_object_start(void *arg)
{
	ClaimsState *st = (ClaimsState *) arg;

	if (st->lex->lex_level == 0)
		st->root_is_object = true;
	return CP_JSON_ACTION_DONE;
}

/* A top-level field (level 1 inside the root); a later "sub" replaces one */
static CP_JSON_ACTION
claims_field_start(void *arg, char *fname, bool isnull)
{
	ClaimsState *st = (ClaimsState *) arg;

	if (st->lex->lex_level == 1)
	{
		st->in_sub = (strcmp(fname, "sub") == 0);
		if (st->in_sub)
		{
			st->sub_kind = isnull ? SUB_NULL : SUB_OTHER;
			st->sub = NULL;
		}
	}
	return CP_JSON_ACTION_DONE;
}

/* A scalar at level 1 is a top-level field's value (the root is an object) */
static CP_JSON_ACTION
claims_scalar(void *arg, char *token, JsonTokenType tokentype)
{
	ClaimsState *st = (ClaimsState *) arg;

	if (st->lex->lex_level == 1 && st->in_sub && tokentype == JSON_TOKEN_STRING)
	{
		st->sub_kind = SUB_STRING;
		st->sub = token;
	}
	return CP_JSON_ACTION_DONE;
}

/*
 * The "sub" of a JSON claims object, or NULL if it has none (or it is JSON
 * null).  Raises 22023 if the claims are not a JSON object or "sub" is not
 * a string.
 *
 * One pass of PostgreSQL's JSON parser validates the text and finds "sub".
 * The claims are not converted to jsonb: jsonb's input would raise its own
 * errors (22P05, 22P02, 22003) for JSON text it cannot hold, such as a
 * \u0000 escape, a lone surrogate or a number numeric cannot hold, which a
 * client must see as malformed claims (22023).  The parse decodes every
 * escape (need_escapes), so escape errors are caught too, and it never
 * converts numbers.  Like jsonb and json_object_field, the last of
 * repeated "sub" keys counts.
 */
static const char *
sub_from_claims(const char *claims)
{
	JsonSemAction sem = {0};
	ClaimsState st = {0};

	st.lex = cp_make_json_lex(pstrdup(claims), strlen(claims),
							  GetDatabaseEncoding(), true);
	sem.semstate = &st;
	sem.object_start = claims_object_start;
	sem.object_field_start = claims_field_start;
	sem.scalar = claims_scalar;

	if (pg_parse_json(st.lex, &sem) != JSON_SUCCESS)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("request.jwt.claims is not valid JSON"),
				  errhint("The setting must hold the JWT's claims as a JSON object, as PostgREST sets it.")));
	if (!st.root_is_object)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("request.jwt.claims is not a JSON object"),
				  errhint("The setting must hold the JWT's claims as a JSON object, as PostgREST sets it.")));
	if (st.sub_kind == SUB_OTHER)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("the \"sub\" claim of request.jwt.claims is not a string")));
	return st.sub;				/* NULL when absent or JSON null */
}

/*
 * A setting's value as a uuid; 22023 naming the setting if it is not one.
 */
static Datum
uuid_from_setting(const char *value, const char *what)
{
	if (!looks_like_uuid(value))
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("%s is not a valid user id", what),
				  errdetail("The value is \"%s\".",
							pnstrdup(value, pg_mbcliplen(value, strlen(value), 64))),
				  errhint("User ids are uuids, like \"0b9c2d1e-0000-4000-8000-000000000001\".")));
	return DirectFunctionCall1(uuid_in, CStringGetDatum(value));
}

/*
 * Does s have the form uuid_in accepts: 32 hex digits, optionally in
 * braces, with a hyphen allowed after any group of four?
 */
static bool
looks_like_uuid(const char *s)
{
	const char *p = s;
	bool		braces = (*p == '{');
	int			digits = 0;

	if (braces)
		p++;
	while (*p && *p != '}')
	{
		if (isxdigit((unsigned char) *p))
			digits++;
		else if (*p != '-' || digits == 0 || digits % 4 != 0 || digits == 32 ||
				 p[1] == '-')
			return false;
		p++;
	}
	if (digits != 32)
		return false;
	if (braces)
		return p[0] == '}' && p[1] == '\0';
	return *p == '\0';
}
