/*-------------------------------------------------------------------------
 *
 * boundary_check.c
 *	  Test-only: under valgrind, check that every value chatpersist hands
 *	  to the server to be stored is fully initialised, at the moment it
 *	  hands it over.
 *
 * Uninitialised bytes in a stored value only reach a system call when the
 * WAL is written, and PostgreSQL's own WAL records carry uninitialised
 * padding there, so test/sanitize/valgrind.supp has to suppress WAL writes
 * as a whole, whoever made the bytes.  To keep chatpersist's values out of
 * that blind spot, test/sanitize.sh links this file into its valgrind
 * build (make CP_TEST_OBJS=...), never into a release build.  Like
 * palloc_check.c, it defines functions of the server with hidden
 * visibility, so only chatpersist's own calls bind to them:
 *
 *	SPI_execute_plan			every non-null parameter (all of chatpersist's
 *								writes through SPI)
 *	heap_modify_tuple_by_cols	every non-null replacement value (the guard
 *								trigger's changes to NEW)
 *
 * Each value is checked with VALGRIND_CHECK_MEM_IS_DEFINED over its bytes
 * (the Datum itself for a by-value type, the varlena, cstring or fixed
 * length otherwise), which reports an error with chatpersist's stack when
 * a byte is undefined; then the server's function runs as usual.  Outside
 * valgrind the checks cost a few instructions and do nothing.
 *
 * Backend-local; no locks.  Catalog lookups (get_typlenbyval) use the
 * syscache, as the server's own calls would.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * test/sanitize/boundary_check.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>
#include <valgrind/memcheck.h>

#include "access/htup_details.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"

/* Bind chatpersist's calls to these definitions, not the server's */
#define CP_HIDDEN __attribute__((visibility("hidden")))

typedef int (*spi_execute_plan_fn) (SPIPlanPtr plan, Datum *values,
									const char *nulls, bool read_only,
									long tcount);
typedef HeapTuple (*heap_modify_tuple_by_cols_fn) (HeapTuple tuple,
												   TupleDesc tupleDesc,
												   int nCols, int *replCols,
												   Datum *replValues,
												   bool *replIsnull);

static void check_value(Datum value, int16 typlen, bool typbyval);
static void *server_function(const char *name);

/*
 * Report (under valgrind) any undefined byte of a value of a type with the
 * given length and passing convention.
 */
static void
check_value(Datum value, int16 typlen, bool typbyval)
{
	const char *p;

	if (typbyval)
	{
		/* Int32GetDatum and friends define all of the Datum's bytes */
		(void) VALGRIND_CHECK_MEM_IS_DEFINED(&value, sizeof(Datum));
		return;
	}
	p = DatumGetPointer(value);
	if (typlen == -1)
		(void) VALGRIND_CHECK_MEM_IS_DEFINED(p, VARSIZE_ANY(p));
	else if (typlen == -2)
		(void) VALGRIND_CHECK_MEM_IS_DEFINED(p, strlen(p) + 1);
	else
		(void) VALGRIND_CHECK_MEM_IS_DEFINED(p, typlen);
}

/*
 * The server's own function of that name: our definitions are hidden, so
 * a lookup in the global scope finds the executable's.
 */
static void *
server_function(const char *name)
{
	void	   *fn = dlsym(RTLD_DEFAULT, name);

	if (fn == NULL)
		elog(ERROR, "could not find the server's %s: %s", name, dlerror());
	return fn;
}

CP_HIDDEN int
SPI_execute_plan(SPIPlanPtr plan, Datum *values, const char *nulls,
				 bool read_only, long tcount)
{
	static spi_execute_plan_fn server = NULL;
	int			nargs = SPI_getargcount(plan);

	if (server == NULL)
		server = (spi_execute_plan_fn) server_function("SPI_execute_plan");

	for (int i = 0; i < nargs; i++)
	{
		int16		typlen;
		bool		typbyval;

		if (nulls != NULL && nulls[i] == 'n')
			continue;
		get_typlenbyval(SPI_getargtypeid(plan, i), &typlen, &typbyval);
		check_value(values[i], typlen, typbyval);
	}
	return server(plan, values, nulls, read_only, tcount);
}

CP_HIDDEN HeapTuple
heap_modify_tuple_by_cols(HeapTuple tuple, TupleDesc tupleDesc, int nCols,
						  int *replCols, Datum *replValues, bool *replIsnull)
{
	static heap_modify_tuple_by_cols_fn server = NULL;

	if (server == NULL)
		server = (heap_modify_tuple_by_cols_fn)
			server_function("heap_modify_tuple_by_cols");

	for (int i = 0; i < nCols; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupleDesc, replCols[i] - 1);

		if (!replIsnull[i])
			check_value(replValues[i], att->attlen, att->attbyval);
	}
	return server(tuple, tupleDesc, nCols, replCols, replValues, replIsnull);
}
