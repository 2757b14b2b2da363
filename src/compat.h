/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Shims for the PostgreSQL major versions chatpersist builds against.
 *
 * chatpersist targets PostgreSQL 15 first; 16 and 17 build from the same
 * source.  Every PG_VERSION_NUM conditional of the project lives here.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHATPERSIST_COMPAT_H
#define CHATPERSIST_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "chatpersist requires PostgreSQL 15 or later"
#endif

/*
 * JSON parsing (common/jsonapi.h): from PostgreSQL 16 on, semantic actions
 * return a JsonParseErrorType; from 17 on, makeJsonLexContextCstringLen
 * takes the context to fill first (NULL: allocate one).  Neither is built
 * here (Debian 12 ships only 15): these follow the headers' documented
 * signatures.
 */
#if PG_VERSION_NUM >= 160000
#define CP_JSON_ACTION			JsonParseErrorType
#define CP_JSON_ACTION_DONE		JSON_SUCCESS
#else
#define CP_JSON_ACTION			void
#define CP_JSON_ACTION_DONE
#endif

#if PG_VERSION_NUM >= 170000
#define cp_make_json_lex(json, len, encoding, need_escapes) \
	makeJsonLexContextCstringLen(NULL, (json), (len), (encoding), (need_escapes))
#else
#define cp_make_json_lex(json, len, encoding, need_escapes) \
	makeJsonLexContextCstringLen((json), (len), (encoding), (need_escapes))
#endif

#endif							/* CHATPERSIST_COMPAT_H */
