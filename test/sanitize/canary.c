/*-------------------------------------------------------------------------
 *
 * canary.c
 *	  Test-only: deliberate memory errors and undefined behaviour, so that
 *	  test/sanitize.sh can prove that each of its detectors reports them.
 *
 * A memory check that cannot fail proves nothing.  test/sanitize.sh links
 * this file into its sanitizer and valgrind builds only (make
 * CP_TEST_OBJS=...), after running the suites declares
 *
 *	CREATE FUNCTION cp_canary(text) RETURNS int
 *		AS '$libdir/chatpersist', 'chatpersist_canary' LANGUAGE C STRICT;
 *
 * in a scratch database, calls it once per kind of error, and expects each
 * call to leave a report naming the function that made the error:
 *
 *	heap-overflow		a write one byte past a palloc'd chunk (needs
 *						palloc_check.c: inside an aset.c block no checker
 *						sees it)
 *	use-after-free		a read of a chunk after pfree
 *	stack-overflow		a write one element past a local array (ASan only)
 *	use-after-return	a read of a local array after its function returned
 *						(ASan only, with detect_stack_use_after_return)
 *	shift				a shift by more than the width of int (UBSan)
 *	uninitialised		a branch on bytes of a chunk that nothing wrote
 *						(valgrind only)
 *	uninitialised-param	a value with bytes that nothing wrote, handed to
 *						SPI_execute_plan (valgrind only, through
 *						boundary_check.c)
 *
 * The function never exists in the extension's SQL script, and the object
 * is never part of a release build.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * test/sanitize/canary.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

static int	canary_heap_overflow(volatile int n);
static int	canary_use_after_free(volatile int n);
static int	canary_stack_overflow(volatile int n);
static void canary_escape_local(volatile int n);
static int	canary_use_after_return(volatile int n);
static int	canary_shift(volatile int n);
static int	canary_uninitialised(volatile int n);
static int	canary_uninitialised_param(volatile int n);

/* Write n + 1 bytes into an n-byte chunk */
static pg_noinline int
canary_heap_overflow(volatile int n)
{
	char	   *p = palloc(n);
	int			result;

	memset(p, 'x', n);
	p[n] = 'y';
	result = p[n - 1];
	pfree(p);
	return result;
}

/* Read a chunk after pfree */
static pg_noinline int
canary_use_after_free(volatile int n)
{
	volatile char *p = palloc(n);

	memset((char *) p, 'x', n);
	pfree((char *) p);
	return p[0];
}

/* Write one element past a local array */
static pg_noinline int
canary_stack_overflow(volatile int n)
{
	volatile char buf[8];

	memset((char *) buf, 'x', sizeof(buf));
	buf[n] = 'y';
	return buf[0];
}

/* Where canary_escape_local leaves the address of its local array */
static volatile char *escaped_local;

/* Let the address of a local array outlive the call (gcc 12 sees it) */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
static pg_noinline void
canary_escape_local(volatile int n)
{
	volatile char buf[32];

	memset((char *) buf, 'x', sizeof(buf));
	escaped_local = &buf[n % 32];
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

/* Read a local array of a function that has returned */
static pg_noinline int
canary_use_after_return(volatile int n)
{
	canary_escape_local(n);
	return *escaped_local;
}

/* Shift 1 by n >= 32 places (undefined even with -fwrapv) */
static pg_noinline int
canary_shift(volatile int n)
{
	return 1 << n;
}

/* Branch on a byte nothing wrote (a branch, which memcheck watches) */
static pg_noinline int
canary_uninitialised(volatile int n)
{
	char	   *p = palloc(n);
	int			result = 0;

	if (p[n / 2] == 'x')
	{
		elog(NOTICE, "canary: the byte happened to be 'x'");
		result = 1;
	}
	pfree(p);
	return result;
}

/* Hand SPI a bytea whose n data bytes nothing wrote */
static pg_noinline int
canary_uninitialised_param(volatile int n)
{
	bytea	   *value = palloc(VARHDRSZ + n);
	Oid			argtypes[1] = {BYTEAOID};
	Datum		values[1];
	SPIPlanPtr	plan;

	SET_VARSIZE(value, VARHDRSZ + n);
	values[0] = PointerGetDatum(value);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare("SELECT pg_catalog.length($1)", 1, argtypes);
	if (plan == NULL ||
		SPI_execute_plan(plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "canary query failed");
	SPI_finish();
	pfree(value);
	return n;
}

/*
 * chatpersist_canary(kind text) RETURNS int: commit the error named by
 * kind (see the file header); returns whatever the erroneous code computed.
 */
PG_FUNCTION_INFO_V1(chatpersist_canary);
Datum
chatpersist_canary(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strcmp(kind, "heap-overflow") == 0)
		PG_RETURN_INT32(canary_heap_overflow(24));
	if (strcmp(kind, "use-after-free") == 0)
		PG_RETURN_INT32(canary_use_after_free(24));
	if (strcmp(kind, "stack-overflow") == 0)
		PG_RETURN_INT32(canary_stack_overflow(8));
	if (strcmp(kind, "use-after-return") == 0)
		PG_RETURN_INT32(canary_use_after_return(3));
	if (strcmp(kind, "shift") == 0)
		PG_RETURN_INT32(canary_shift(40));
	if (strcmp(kind, "uninitialised") == 0)
		PG_RETURN_INT32(canary_uninitialised(24));
	if (strcmp(kind, "uninitialised-param") == 0)
		PG_RETURN_INT32(canary_uninitialised_param(24));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown canary \"%s\"", kind)));
	PG_RETURN_NULL();
}
