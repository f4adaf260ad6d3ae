/* The three OpenTelemetry signals and their names as the Collector spells them. */
#ifndef OTC_SIGNAL_H
#define OTC_SIGNAL_H

enum otc_signal { OTC_SIGNAL_TRACES = 0, OTC_SIGNAL_METRICS = 1, OTC_SIGNAL_LOGS = 2 };
#define OTC_SIGNAL_COUNT 3
#define OTC_SIGNAL_BIT(s) (1u << (s))
#define OTC_SIGNALS_ALL 7u

/* "traces", "metrics", "logs" (the pipeline type names). */
const char *otc_signal_name(enum otc_signal s);
/* "spans", "metric_points", "log_records" (the item names of the otelcol self-metrics). */
const char *otc_signal_item_name(enum otc_signal s);
/* Parses a pipeline type name; returns 0 or OTC_ERR_CONFIG. */
int otc_signal_parse(const char *name, enum otc_signal *out);

#endif
