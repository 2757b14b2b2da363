/*-------------------------------------------------------------------------
 *
 * preload.c
 *	  Test-only: a small library test/sanitize.sh preloads into the server
 *	  right after gcc's ASan runtime, so that AddressSanitizer and
 *	  UndefinedBehaviorSanitizer start, and keep their options, inside
 *	  Debian's server.  Built by test/sanitize.sh with
 *
 *		gcc -shared -fPIC -DCP_ASAN_OPTIONS='"..."' -DCP_UBSAN_OPTIONS='"..."' \
 *			-o preload.so preload.c
 *
 * Two problems, both of a runtime that is preloaded rather than linked
 * into the executable:
 *
 * 1. The ASan runtime initialises at the first malloc it intercepts.  In
 *	  Debian's postgres that is inside the constructor of libgpg-error
 *	  (pulled in through libsystemd and libgcrypt), which runs before the
 *	  runtime's own and calls bindtextdomain, holding glibc's gettext lock
 *	  for writing.  Part of the runtime's initialisation looks up the
 *	  optional symbol swift_demangle with dlsym; the lookup fails, dlerror
 *	  translates its message, the translation takes the same lock for
 *	  reading, and the lock's state is corrupted: every later
 *	  bindtextdomain, such as the one in postgres's main(), waits forever.
 *	  Defining the symbol makes the lookup succeed, so no message is
 *	  translated.  It returns NULL, "not a Swift name": the runtime keeps
 *	  its own demangling.
 *
 * 2. The UBSan runtime reads UBSAN_OPTIONS when it first reports, from
 *	  /proc/self/environ.  By then a backend has overwritten that memory
 *	  with its ps display (ps_status.c), so the runtime would find no
 *	  options: it would write to stderr, without stack traces, and reset the
 *	  log file that ASan's options had set.  The runtimes take default
 *	  options from __asan_default_options and __ubsan_default_options,
 *	  which this library defines from the same strings as the environment
 *	  variables ASAN_OPTIONS and UBSAN_OPTIONS that the launcher also sets.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * test/sanitize/preload.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdint.h>

#if !defined(CP_ASAN_OPTIONS) || !defined(CP_UBSAN_OPTIONS)
#error "build with -DCP_ASAN_OPTIONS and -DCP_UBSAN_OPTIONS (see test/sanitize.sh)"
#endif

char	   *swift_demangle(const char *mangled, size_t mangled_len, char *out,
						   size_t *out_len, uint32_t flags);
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

/* Found by the ASan runtime's dlsym; demangles nothing */
char *
swift_demangle(const char *mangled, size_t mangled_len, char *out,
			   size_t *out_len, uint32_t flags)
{
	return NULL;
}

/* The options the runtimes start from, whatever the environment holds */
const char *
__asan_default_options(void)
{
	return CP_ASAN_OPTIONS;
}

const char *
__ubsan_default_options(void)
{
	return CP_UBSAN_OPTIONS;
}
