/*
 * print_classes.c: print, as Markdown table rows, how the relay classifies
 * every error code librdkafka knows (src/error_class.c), and fail if a code
 * is not listed there explicitly.  test/t/012_error_classes.pl compares the
 * output with the table in docs/reliability.md.
 */
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "error_class.h"

int
main(void)
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
	return missing == 0 ? 0 : 1;
}
