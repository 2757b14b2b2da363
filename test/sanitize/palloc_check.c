/*-------------------------------------------------------------------------
 *
 * palloc_check.c
 *	  Test-only: give every palloc that chatpersist's own code makes a
 *	  malloc block of its own, so that AddressSanitizer and valgrind see
 *	  the exact bounds and lifetime of each chunk.
 *
 * A PostgreSQL server built without USE_VALGRIND (Debian's is) carves
 * palloc chunks out of 8 kB and larger malloc'd blocks (aset.c), so a
 * memory checker only sees those blocks: a write past the end of a chunk
 * into its neighbour, or a read of a chunk after pfree or after its
 * context was reset (the block is kept and reused), goes unnoticed.
 *
 * test/sanitize.sh links this file into its sanitizer and valgrind builds
 * of chatpersist (make CP_TEST_OBJS=test/sanitize/palloc_check.o), never
 * into a release build.  It defines palloc and the other allocation
 * functions chatpersist calls with hidden visibility, so the calls from
 * chatpersist's objects bind to these definitions at link time while the
 * server, and every other library, keeps using its own.  Each allocation
 * goes to a "chatpersist palloc check" child of the context it was asked
 * for: a context of our own (MemoryContextCreate with the methods below)
 * that mallocs every chunk separately, with the context pointer just in
 * front of the chunk as PostgreSQL 15 expects, so pfree, repalloc and
 * GetMemoryChunkSpace, called from anywhere, dispatch to it.  Resetting or
 * deleting the parent deletes its children, so the chunks are freed exactly
 * when the parent's own chunks would be: a pointer kept past its context's
 * life is then a use after free that the checker reports, and repalloc
 * always moves the chunk, so a stale pointer to the old copy is one too.
 *
 * What stays invisible: memory the server allocates for chatpersist
 * (detoasted arguments, StringInfo buffers, SPI results, strings built by
 * text_to_cstring and friends), since the server's own calls are not
 * redirected.
 *
 * No locks; backend-local.  Built against PostgreSQL 15's memory-context
 * API (the chunk header moved in 16), which compat.h does not cover.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * test/sanitize/palloc_check.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/ilist.h"
#include "nodes/memnodes.h"
#include "utils/memutils.h"

#if PG_VERSION_NUM >= 160000
#error "palloc_check.c supports the memory-context API of PostgreSQL 15 only"
#endif

/* Bind chatpersist's calls to these definitions, not the server's */
#define CP_HIDDEN __attribute__((visibility("hidden")))

/*
 * One chunk: its own malloc block.  GetMemoryChunkContext reads the
 * context pointer in the word just before the chunk, so it comes last and
 * the header is a multiple of MAXALIGN.
 */
typedef struct CheckedChunk
{
	dlist_node	node;			/* in the context's list of chunks */
	Size		size;			/* requested size */
	MemoryContext context;		/* owning context; must be last */
} CheckedChunk;

StaticAssertDecl(sizeof(CheckedChunk) == MAXALIGN(sizeof(CheckedChunk)),
				 "the chunk header must keep chunks MAXALIGNed");

#define CHUNK_HDRSZ			sizeof(CheckedChunk)
#define ChunkHeader(p)		((CheckedChunk *) ((char *) (p) - CHUNK_HDRSZ))
#define ChunkPointer(c)		((void *) ((char *) (c) + CHUNK_HDRSZ))

typedef struct CheckedContext
{
	MemoryContextData header;
	dlist_head	chunks;
} CheckedContext;

static void *checked_alloc(MemoryContext context, Size size);
static void checked_free(MemoryContext context, void *pointer);
static void *checked_realloc(MemoryContext context, void *pointer, Size size);
static void checked_reset(MemoryContext context);
static void checked_delete(MemoryContext context);
static Size checked_chunk_space(MemoryContext context, void *pointer);
static bool checked_is_empty(MemoryContext context);
static void checked_stats(MemoryContext context,
						  MemoryStatsPrintFunc printfunc, void *passthru,
						  MemoryContextCounters *totals,
						  bool print_to_stderr);
#ifdef MEMORY_CONTEXT_CHECKING
static void checked_check(MemoryContext context);
#endif
static MemoryContext checked_child(MemoryContext parent);
static void *checked_palloc(MemoryContext parent, Size size, int flags);

static const MemoryContextMethods checked_methods = {
	checked_alloc,
	checked_free,
	checked_realloc,
	checked_reset,
	checked_delete,
	checked_chunk_space,
	checked_is_empty,
	checked_stats
#ifdef MEMORY_CONTEXT_CHECKING
	,checked_check
#endif
};

/* A fresh malloc block per chunk; NULL when out of memory */
static void *
checked_alloc(MemoryContext context, Size size)
{
	CheckedContext *cxt = (CheckedContext *) context;
	CheckedChunk *chunk = malloc(CHUNK_HDRSZ + size);

	if (chunk == NULL)
		return NULL;
	chunk->size = size;
	chunk->context = context;
	dlist_push_head(&cxt->chunks, &chunk->node);
	context->mem_allocated += CHUNK_HDRSZ + size;
	return ChunkPointer(chunk);
}

/* pfree: give the block back at once, so a later use is reported */
static void
checked_free(MemoryContext context, void *pointer)
{
	CheckedChunk *chunk = ChunkHeader(pointer);

	Assert(chunk->context == context);
	dlist_delete(&chunk->node);
	context->mem_allocated -= CHUNK_HDRSZ + chunk->size;
	free(chunk);
}

/* repalloc: always a new block, so a stale pointer is a use after free */
static void *
checked_realloc(MemoryContext context, void *pointer, Size size)
{
	CheckedChunk *old = ChunkHeader(pointer);
	void	   *result = checked_alloc(context, size);

	if (result == NULL)
		return NULL;
	memcpy(result, pointer, Min(size, old->size));
	checked_free(context, pointer);
	return result;
}

/* Free every chunk */
static void
checked_reset(MemoryContext context)
{
	CheckedContext *cxt = (CheckedContext *) context;
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &cxt->chunks)
	{
		CheckedChunk *chunk = dlist_container(CheckedChunk, node, iter.cur);

		dlist_delete(&chunk->node);
		free(chunk);
	}
	context->mem_allocated = 0;
}

/* Free every chunk and the context itself (MemoryContextDelete unlinked it) */
static void
checked_delete(MemoryContext context)
{
	checked_reset(context);
	free(context);
}

static Size
checked_chunk_space(MemoryContext context, void *pointer)
{
	return CHUNK_HDRSZ + ChunkHeader(pointer)->size;
}

static bool
checked_is_empty(MemoryContext context)
{
	return dlist_is_empty(&((CheckedContext *) context)->chunks);
}

/* For MemoryContextStats and pg_backend_memory_contexts */
static void
checked_stats(MemoryContext context, MemoryStatsPrintFunc printfunc,
			  void *passthru, MemoryContextCounters *totals,
			  bool print_to_stderr)
{
	CheckedContext *cxt = (CheckedContext *) context;
	dlist_iter	iter;
	Size		nchunks = 0;

	dlist_foreach(iter, &cxt->chunks)
		nchunks++;

	if (printfunc)
	{
		char		stats_string[200];

		snprintf(stats_string, sizeof(stats_string),
				 "%zu total in %zu chunks (one malloc block each)",
				 context->mem_allocated, nchunks);
		printfunc(context, passthru, stats_string, print_to_stderr);
	}
	if (totals)
	{
		totals->nblocks += nchunks;
		totals->totalspace += context->mem_allocated;
	}
}

#ifdef MEMORY_CONTEXT_CHECKING
/* Nothing to check: the memory checker watches every chunk */
static void
checked_check(MemoryContext context)
{
}
#endif

/*
 * The "chatpersist palloc check" child of parent, created at first use.  A
 * parent that is one already is its own.  The child is usually the newest
 * one, first in the list.
 */
static MemoryContext
checked_child(MemoryContext parent)
{
	MemoryContext child;
	CheckedContext *cxt;

	if (parent->methods == &checked_methods)
		return parent;
	for (child = parent->firstchild; child != NULL; child = child->nextchild)
	{
		if (child->methods == &checked_methods)
			return child;
	}

	cxt = malloc(sizeof(CheckedContext));
	if (cxt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while creating memory context \"%s\".",
						   "chatpersist palloc check")));
	dlist_init(&cxt->chunks);
	/* The node tag must be one MemoryContextIsValid accepts */
	MemoryContextCreate((MemoryContext) cxt, T_AllocSetContext,
						&checked_methods, parent, "chatpersist palloc check");
	return (MemoryContext) cxt;
}

/*
 * MemoryContextAllocExtended's contract, in parent's checked child:
 * MCXT_ALLOC_HUGE, MCXT_ALLOC_NO_OOM and MCXT_ALLOC_ZERO as there.
 */
static void *
checked_palloc(MemoryContext parent, Size size, int flags)
{
	MemoryContext context;
	void	   *result;

	if (((flags & MCXT_ALLOC_HUGE) != 0 && !AllocHugeSizeIsValid(size)) ||
		((flags & MCXT_ALLOC_HUGE) == 0 && !AllocSizeIsValid(size)))
		elog(ERROR, "invalid memory alloc request size %zu", size);

	context = checked_child(parent);
	context->isReset = false;
	parent->isReset = false;
	result = checked_alloc(context, size);
	if (result == NULL)
	{
		if ((flags & MCXT_ALLOC_NO_OOM) != 0)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on request of size %zu in memory context \"%s\".",
						   size, parent->name)));
	}
	if ((flags & MCXT_ALLOC_ZERO) != 0)
		memset(result, 0, size);
	return result;
}

/*
 * The allocation functions of palloc.h that chatpersist's objects call, with
 * the server's semantics.  (pfree and repalloc are the server's: they reach
 * checked_free and checked_realloc through the chunk's context.)
 */
CP_HIDDEN void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return checked_palloc(context, size, 0);
}

CP_HIDDEN void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return checked_palloc(context, size, MCXT_ALLOC_ZERO);
}

CP_HIDDEN void *
MemoryContextAllocZeroAligned(MemoryContext context, Size size)
{
	return checked_palloc(context, size, MCXT_ALLOC_ZERO);
}

CP_HIDDEN void *
MemoryContextAllocExtended(MemoryContext context, Size size, int flags)
{
	return checked_palloc(context, size, flags);
}

CP_HIDDEN void *
MemoryContextAllocHuge(MemoryContext context, Size size)
{
	return checked_palloc(context, size, MCXT_ALLOC_HUGE);
}

CP_HIDDEN void *
palloc(Size size)
{
	return checked_palloc(CurrentMemoryContext, size, 0);
}

CP_HIDDEN void *
palloc0(Size size)
{
	return checked_palloc(CurrentMemoryContext, size, MCXT_ALLOC_ZERO);
}

CP_HIDDEN void *
palloc_extended(Size size, int flags)
{
	return checked_palloc(CurrentMemoryContext, size, flags);
}

CP_HIDDEN char *
MemoryContextStrdup(MemoryContext context, const char *string)
{
	Size		len = strlen(string) + 1;
	char	   *result = checked_palloc(context, len, 0);

	memcpy(result, string, len);
	return result;
}

CP_HIDDEN char *
pstrdup(const char *in)
{
	return MemoryContextStrdup(CurrentMemoryContext, in);
}

CP_HIDDEN char *
pnstrdup(const char *in, Size len)
{
	char	   *result;

	len = strnlen(in, len);
	result = checked_palloc(CurrentMemoryContext, len + 1, 0);
	memcpy(result, in, len);
	result[len] = '\0';
	return result;
}

/*
 * psprintf into a chunk of exactly the text's size (the server's keeps the
 * larger buffer it printed into, which would hide a read past the end).
 */
CP_HIDDEN char *
psprintf(const char *fmt,...)
{
	int			save_errno = errno;
	size_t		len = 128;

	for (;;)
	{
		char	   *buf = checked_palloc(CurrentMemoryContext, len, 0);
		va_list		args;
		size_t		needed;

		errno = save_errno;
		va_start(args, fmt);
		needed = pvsnprintf(buf, len, fmt, args);
		va_end(args);
		if (needed < len)
		{
			char	   *result = checked_palloc(CurrentMemoryContext,
												needed + 1, 0);

			memcpy(result, buf, needed + 1);
			pfree(buf);
			return result;
		}
		pfree(buf);
		len = needed;
	}
}
