/*
 * print_classes.c: print, as Markdown table rows, how the relay classifies
 * every error code the running librdkafka knows (src/error_class.c), and
 * fail if a code is not listed there explicitly.  With --newer, print the
 * codes the table knows by number only (added after librdkafka 2.0.2), and
 * fail if the running librdkafka knows one of them under another name.
 * test/t/012_error_classes.pl compares the output with the table in
 * docs/reliability.md.
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "error_class.h"

/*
 * print_library_codes: one row per code of rd_kafka_get_err_descs(); the
 * number of codes without an explicit class.
 */
static int
print_library_codes(void)
{
	const struct rd_kafka_err_desc *descs;
	size_t		n;
	size_t		i;
	int			missing = 0;

	rd_kafka_get_err_descs(&descs, &n);
	for (i = 0; i < n; i++)
	{
		int			code = descs[i].code;

		if (descs[i].name == NULL || code == RD_KAFKA_RESP_ERR_NO_ERROR ||
			code == RD_KAFKA_RESP_ERR__BEGIN || code == RD_KAFKA_RESP_ERR__END)
			continue;
		if (!outbox_error_class_known(code))
		{
			fprintf(stderr, "not classified: %s (%d)\n", descs[i].name, code);
			missing++;
		}
		printf("| %d | %s | %s |\n", code, descs[i].name,
			   outbox_error_class_name(outbox_classify_error(code)));
	}
	return missing;
}

/*
 * print_newer_codes: one row per code known by number only; the number of
 * codes the running library names differently.
 */
static int
print_newer_codes(void)
{
	const struct rd_kafka_err_desc *descs;
	size_t		n;
	size_t		j;
	int			i;
	int			code;
	const char *name;
	OutboxErrorClass cls;
	int			wrong = 0;

	rd_kafka_get_err_descs(&descs, &n);
	for (i = 0; outbox_error_class_newer(i, &code, &name, &cls); i++)
	{
		for (j = 0; j < n; j++)
		{
			if (descs[j].code == code && descs[j].name != NULL &&
				strcmp(descs[j].name, name) != 0)
			{
				fprintf(stderr, "code %d is %s in librdkafka %s, %s in src/error_class.c\n",
						code, descs[j].name, rd_kafka_version_str(), name);
				wrong++;
			}
		}
		printf("| %d | %s | %s |\n", code, name, outbox_error_class_name(cls));
	}
	return wrong;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--newer") == 0)
		return print_newer_codes() == 0 ? 0 : 1;
	return print_library_codes() == 0 ? 0 : 1;
}
