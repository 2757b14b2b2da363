# Makefile for chatpersist (PGXS)
EXTENSION      = chatpersist
EXTVERSION     = 2.0
MODULE_big     = $(EXTENSION)
OBJS           = src/chatpersist.o src/checksum.o src/messages.o src/merge.o src/note.o src/save.o src/storage.o src/history.o src/load.o src/trigger.o src/stats.o src/security.o src/migrate.o src/cursor.o src/message_trigger.o
# test-only objects that test/sanitize.sh links into its own builds
OBJS          += $(CP_TEST_OBJS)
DATA           = $(wildcard src/$(EXTENSION)--*.sql)
PGFILEDESC     = "chatpersist - lossless chat conversation persistence"

REGRESS        = checksum merge save trigger errors load append delete history changes stats migrate fuzz_regressions orm_locking storage resurrection
REGRESS_OPTS   = --load-extension=$(EXTENSION)

ISOLATION      = save_race first_save_race stale_update save_vs_update repeatable_read serializable stale_base changes_order append_race append_vs_delete restore_vs_save notify version_reuse migrate_vs_append
ISOLATION_OPTS = --inputdir=test --load-extension=$(EXTENSION)

PG_CFLAGS     += -Wall -Wextra -Wno-unused-parameter
PG_CONFIG     ?= pg_config
PGXS          := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# pgTAP catalog tests (needs a running server and pg_prove)
.PHONY: pgtap
pgtap:
	pg_prove --ext .sql test/pgtap/*.sql
