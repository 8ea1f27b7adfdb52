/*-------------------------------------------------------------------------
 *
 * librdkafka_version.c
 *	  The librdkafka the relay runs with: say which one, warn when a
 *	  setting meets one of its known defects, and keep away from what
 *	  would crash the backend.
 *
 * The relay may be built against one librdkafka and run with another (a
 * newer librdkafka1 package, an rpath to a build under RDKAFKA_PREFIX), so
 * every decision here reads rd_kafka_version() at run time, never the
 * header's RD_KAFKA_VERSION.  The defects are those of librdkafka's
 * CHANGELOG.md that reach the relay; docs/kafka.md has the same table.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/librdkafka_version.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "lib/stringinfo.h"

#include "error_class.h"
#include "librdkafka_version.h"

/* rd_kafka_version() of a release: 0xMMmmrrff, ff = 0xff for a release */
#define LRK_VERSION(major, minor, revision) \
	((((major) << 24) | ((minor) << 16) | ((revision) << 8)) | 0xff)

/* SCRAM client-final-message repeats the client nonce (#4895) */
#define LRK_SCRAM_KAFKA4_FIXED		LRK_VERSION(2, 6, 1)
/* compression dropped when old Produce versions are gone (#5130) */
#define LRK_COMPRESSION_FIXED		LRK_VERSION(2, 11, 1)
/* the only release with the PushTelemetry assert (#4826) */
#define LRK_TELEMETRY_ASSERT		LRK_VERSION(2, 5, 0)

static bool lrk_logged = false;
static bool lrk_telemetry_logged = false;

static bool lrk_conf_value(rd_kafka_conf_t *conf, const char *name,
						   char *buf, size_t size);
static void lrk_log_unknown_codes(void);
static void lrk_warn_defects(rd_kafka_conf_t *conf, int version);

/*
 * lrk_conf_value: the value of property name in conf, into buf; false when
 * librdkafka does not know the property or it is unset.  For settings that
 * are never secret (the caller asks for mechanisms and codecs only).
 */
static bool
lrk_conf_value(rd_kafka_conf_t *conf, const char *name, char *buf, size_t size)
{
	size_t		len = size;

	buf[0] = '\0';
	if (rd_kafka_conf_get(conf, name, buf, &len) != RD_KAFKA_CONF_OK)
		return false;
	return buf[0] != '\0';
}

/*
 * lrk_log_unknown_codes: log, once, the error codes the running librdkafka
 * knows and src/error_class.c does not (a librdkafka newer than the
 * table).  They still get a class that loses nothing (see
 * outbox_classify_error); this says the table needs them.
 */
static void
lrk_log_unknown_codes(void)
{
	const struct rd_kafka_err_desc *descs;
	size_t		n;
	size_t		i;
	StringInfoData names;
	int			count = 0;

	initStringInfo(&names);
	rd_kafka_get_err_descs(&descs, &n);
	for (i = 0; i < n; i++)
	{
		int			code = descs[i].code;

		if (descs[i].name == NULL || code == RD_KAFKA_RESP_ERR_NO_ERROR ||
			code == RD_KAFKA_RESP_ERR__BEGIN || code == RD_KAFKA_RESP_ERR__END ||
			outbox_error_class_known(code))
			continue;
		appendStringInfo(&names, "%s%s (%d)", count++ > 0 ? ", " : "",
						 descs[i].name, code);
	}
	if (count > 0)
		ereport(LOG,
				(errmsg("librdkafka %s reports error codes this relay does not know: %s",
						rd_kafka_version_str(), names.data),
				 errdetail("Events failing with such a code are held and produced again, never dead-lettered."),
				 errhint("Use a release of outbox_kafka that knows this librdkafka.")));
	pfree(names.data);
}

/*
 * lrk_warn_defects: a WARNING for each setting in conf that meets a known
 * defect of librdkafka version (rd_kafka_version()).
 */
static void
lrk_warn_defects(rd_kafka_conf_t *conf, int version)
{
	char		value[256];

	if (version < LRK_SCRAM_KAFKA4_FIXED &&
		lrk_conf_value(conf, "security.protocol", value, sizeof(value)) &&
		pg_strncasecmp(value, "sasl", 4) == 0 &&
		lrk_conf_value(conf, "sasl.mechanisms", value, sizeof(value)) &&
		pg_strncasecmp(value, "SCRAM", 5) == 0)
		ereport(WARNING,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("librdkafka %s cannot log in to Apache Kafka 4 with %s",
						rd_kafka_version_str(), value),
				 errdetail("librdkafka before 2.6.1 sends a SCRAM nonce that Kafka 4.0 and newer refuse as invalid credentials; Kafka 3.x accepts it."),
				 errhint("Build outbox_kafka against librdkafka 2.6.1 or newer (see docs/kafka.md).")));

	/* compression.type is an alias of compression.codec */
	if (version < LRK_COMPRESSION_FIXED &&
		lrk_conf_value(conf, "compression.codec", value, sizeof(value)) &&
		strcmp(value, "none") != 0)
		ereport(WARNING,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("librdkafka %s may send messages uncompressed despite compression %s",
						rd_kafka_version_str(), value),
				 errdetail("librdkafka before 2.11.1 turns compression off against brokers or proxies that no longer offer the oldest Produce request versions."),
				 errhint("Build outbox_kafka against librdkafka 2.11.1 or newer (see docs/kafka.md).")));

	if (lrk_conf_value(conf, "sasl.oauthbearer.method", value, sizeof(value)) &&
		pg_strcasecmp(value, "oidc") == 0)
	{
		char		features[512];

		if (!lrk_conf_value(conf, "builtin.features", features, sizeof(features)) ||
			strstr(features, "oidc") == NULL)
			ereport(WARNING,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("librdkafka %s was built without OAUTHBEARER OIDC support",
							rd_kafka_version_str()),
					 errdetail("\"sasl.oauthbearer.method=oidc\" needs a librdkafka built with libcurl (builtin.features lists \"oidc\")."),
					 errhint("Build outbox_kafka against a librdkafka with OIDC support (see docs/kafka.md).")));
	}
}

/*
 * outbox_librdkafka_version: the version of the librdkafka this process
 * runs with, e.g. "2.14.2"; any process, any time.
 */
const char *
outbox_librdkafka_version(void)
{
	return rd_kafka_version_str();
}

/*
 * outbox_librdkafka_vet_config: called with a producer's configuration
 * just before rd_kafka_new(), in the worker process.  Logs, once per
 * process, which librdkafka runs (and which header the relay was built
 * with) and the error codes it knows that the relay does not; warns about
 * settings that meet a defect of that version; and turns off KIP-714
 * telemetry on librdkafka 2.5.0, whose PushTelemetry assert would abort
 * the backend.  Never fails: whatever it cannot set, rd_kafka_new reports.
 */
void
outbox_librdkafka_vet_config(rd_kafka_conf_t *conf)
{
	int			version = rd_kafka_version();
	char		errstr[256];

	if (!lrk_logged)
	{
		lrk_logged = true;
		ereport(LOG,
				(errmsg("outbox_kafka relay runs librdkafka %s (built against %d.%d.%d)",
						rd_kafka_version_str(),
						(RD_KAFKA_VERSION >> 24) & 0xff,
						(RD_KAFKA_VERSION >> 16) & 0xff,
						(RD_KAFKA_VERSION >> 8) & 0xff)));
		lrk_log_unknown_codes();
	}
	lrk_warn_defects(conf, version);

	if ((version & ~0xff) == (LRK_TELEMETRY_ASSERT & ~0xff))
	{
		if (rd_kafka_conf_set(conf, "enable.metrics.push", "false",
							  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
			ereport(WARNING,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not turn off telemetry of librdkafka %s: %s",
							rd_kafka_version_str(), errstr)));
		else if (!lrk_telemetry_logged)
		{
			lrk_telemetry_logged = true;
			ereport(LOG,
					(errmsg("KIP-714 telemetry is turned off: librdkafka %s can abort the backend when it pushes metrics",
							rd_kafka_version_str()),
					 errhint("Use librdkafka 2.5.3 or newer.")));
		}
	}
}
