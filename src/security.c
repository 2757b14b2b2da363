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
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "chatpersist.h"

static bool looks_like_uuid(const char *s);
static Datum uuid_from_setting(const char *value, const char *what);
static const char *sub_from_claims(const char *claims);
static Datum json_field(PGFunction fn, text *json, const char *key, bool *isnull);

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
 * The "sub" of a JSON claims object, or NULL if it has none (or it is JSON
 * null).  Raises 22023 if the claims are not a JSON object or "sub" is not
 * a string.
 *
 * The claims are read as json, not jsonb: jsonb's input would raise its own
 * errors (22P05, 22P02, 22003) for JSON text it cannot hold, such as a
 * \u0000 escape, a lone surrogate or a number numeric cannot hold, which a
 * client must see as malformed claims (22023).  The first parse decodes the
 * escapes, so that every escape error is caught here; numbers are never
 * converted, and the json functions below then cannot fail.  Like jsonb,
 * json_object_field takes the last of repeated keys.
 */
static const char *
sub_from_claims(const char *claims)
{
	JsonLexContext *lex;
	text	   *json;
	Datum		sub;
	char	   *type;
	bool		isnull;

	/* Parse once without raising, so that the error can say what is wrong */
	lex = makeJsonLexContextCstringLen(pstrdup(claims), strlen(claims),
									   GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("request.jwt.claims is not valid JSON"),
				  errhint("The setting must hold the JWT's claims as a JSON object, as PostgREST sets it.")));

	json = cstring_to_text(claims);
	type = TextDatumGetCString(DirectFunctionCall1(json_typeof, PointerGetDatum(json)));
	if (strcmp(type, "object") != 0)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("request.jwt.claims is not a JSON object"),
				  errhint("The setting must hold the JWT's claims as a JSON object, as PostgREST sets it.")));

	sub = json_field(json_object_field, json, "sub", &isnull);
	if (isnull)
		return NULL;
	type = TextDatumGetCString(DirectFunctionCall1(json_typeof, sub));
	if (strcmp(type, "null") == 0)
		return NULL;
	if (strcmp(type, "string") != 0)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("the \"sub\" claim of request.jwt.claims is not a string")));
	return TextDatumGetCString(json_field(json_object_field_text, json, "sub", &isnull));
}

/*
 * Call json_object_field or json_object_field_text for one key of a json
 * value; *isnull is set when the object has no such key (DirectFunctionCall
 * would raise an error for the NULL result).
 */
static Datum
json_field(PGFunction fn, text *json, const char *key, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = PointerGetDatum(json);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(key);
	fcinfo->args[1].isnull = false;
	result = fn(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
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
