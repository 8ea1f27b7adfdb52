# src/rdkafka.mk: compiler and linker flags for building against the
# librdkafka installed under $(RDKAFKA_PREFIX) (make RDKAFKA_PREFIX=...);
# included by the top-level Makefile and the test helpers' Makefiles.
# Without RDKAFKA_PREFIX both are empty: the system librdkafka.
#
# -isystem, not -I: warnings in librdkafka's own header must not trip our
# -Werror.  The rpath makes the program (or the server loading the
# extension) load that library, not the system's.
ifneq ($(strip $(RDKAFKA_PREFIX)),)
RDKAFKA_CPPFLAGS = -isystem $(RDKAFKA_PREFIX)/include
RDKAFKA_LDFLAGS = -L$(RDKAFKA_PREFIX)/lib -Wl,-rpath,$(RDKAFKA_PREFIX)/lib
endif
