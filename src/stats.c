/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Counters of what chatpersist did: saves by status, merges, conflicts,
 *	  stale direct updates and rejected inputs; the SQL function stats().
 *
 * When the library is in shared_preload_libraries the counters live in
 * shared memory as atomics and cover the whole cluster since the server
 * started.  Otherwise they are plain backend-local variables that cover the
 * calling session only; stats() says which in its "cluster_wide" row and in
 * a NOTICE.
 *
 * Counters are not transactional: a call is counted when it decides, even
 * if its transaction later rolls back.  Atomic increments need no lock.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "chatpersist.h"

/* Names of the counters, in CpStat order, as stats() reports them */
static const char *const stat_names[CP_STAT_COUNT] = {
	"saves_created",
	"saves_updated",
	"saves_unchanged",
	"saves_merged",
	"saves_overwritten",
	"saves_deleted",
	"appends",
	"restores",
	"merges",
	"conflicts",
	"replays",
	"stale_updates_rejected",
	"inputs_rejected",
};

typedef struct CpSharedStats
{
	pg_atomic_uint64 counters[CP_STAT_COUNT];
} CpSharedStats;

static CpSharedStats *shared_stats = NULL;
static uint64 local_stats[CP_STAT_COUNT];

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void stats_shmem_request(void);
static void stats_shmem_startup(void);

/*
 * Called from _PG_init.  Only while shared_preload_libraries is processed
 * can shared memory still be requested; a library loaded later keeps its
 * counters per backend.
 */
void
CpStatsInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = stats_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = stats_shmem_startup;
}

/* Ask the postmaster for room for the shared counters */
static void
stats_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(CpSharedStats)));
}

/*
 * Attach to (and, in the first process, initialise) the shared counters.
 * AddinShmemInitLock serialises the initialisation, as in
 * pg_stat_statements.
 */
static void
stats_shmem_startup(void)
{
	bool		found;
	CpSharedStats *s;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	s = ShmemInitStruct("chatpersist stats", sizeof(CpSharedStats), &found);
	if (!found)
	{
		for (int i = 0; i < CP_STAT_COUNT; i++)
			pg_atomic_init_u64(&s->counters[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
	shared_stats = s;
}

/*
 * Add n to a counter.
 */
void
CpStatsAdd(CpStat stat, uint64 n)
{
	Assert(stat >= 0 && stat < CP_STAT_COUNT);
	if (n == 0)
		return;
	if (shared_stats != NULL)
		pg_atomic_fetch_add_u64(&shared_stats->counters[stat], (int64) n);
	else
		local_stats[stat] += n;
}

/*
 * stats() RETURNS TABLE(name text, value bigint)
 *
 * One row per counter, then "cluster_wide": 1 when the counters are shared
 * by the whole cluster (chatpersist is in shared_preload_libraries), 0 when
 * they count this session's calls only (a NOTICE says so too).
 */
PG_FUNCTION_INFO_V1(chatpersist_stats);
Datum
chatpersist_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	InitMaterializedSRF(fcinfo, 0);

	if (shared_stats == NULL)
		ereport(NOTICE,
				(errmsg("chatpersist statistics cover this session only"),
				 errhint("Add chatpersist to shared_preload_libraries and restart the server for cluster-wide counters.")));

	for (int i = 0; i < CP_STAT_COUNT; i++)
	{
		uint64		v = shared_stats ?
			pg_atomic_read_u64(&shared_stats->counters[i]) : local_stats[i];

		values[0] = CStringGetTextDatum(stat_names[i]);
		values[1] = Int64GetDatum((int64) v);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	values[0] = CStringGetTextDatum("cluster_wide");
	values[1] = Int64GetDatum(shared_stats != NULL ? 1 : 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	return (Datum) 0;
}
