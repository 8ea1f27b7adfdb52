/*-------------------------------------------------------------------------
 *
 * kept_plan.c
 *	  SPI plans the relay prepares once per process and keeps.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/kept_plan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "relay.h"

/*
 * outbox_keep_plan: prepare sql once per process and keep the plan in
 * *plan.  The plan cache re-plans by itself if the extension is dropped
 * and re-created.  SPI must be connected.
 */
SPIPlanPtr
outbox_keep_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare(\"%s\") failed: %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}
