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

#endif							/* CHATPERSIST_COMPAT_H */
