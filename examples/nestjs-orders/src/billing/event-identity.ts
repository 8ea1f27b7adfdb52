/** A header value as kafkajs hands it over (Buffers here: BillingKafkaServer). */
export type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** The text of a header (the last value when it is repeated), or undefined. */
export function headerText(v: HeaderValue): string | undefined {
  if (Array.isArray(v)) return headerText(v[v.length - 1]);
  return v === undefined ? undefined : v.toString();
}

/**
 * Who published an event and under which id: the key of
 * billing.processed_events.
 *
 * - "outbox-event-id" (a UUID, time-ordered) is unique for ever: it does
 *   not repeat after DROP/CREATE EXTENSION, a restore to an earlier point
 *   or a failover to a standby that lagged.  It is the id to use.
 * - "outbox-id" is a per-database sequence value.  Those events CAN repeat
 *   an id that Kafka already holds for another event, and a consumer that
 *   de-duplicates on it would silently drop the new event.  It is used only
 *   for messages without "outbox-event-id" (published by an older
 *   outbox_kafka), with a warning, and kept in its own namespace
 *   ("outbox-id:4711") so it never matches an event id.
 *
 * `source` names the database that publishes the topic (configured,
 * BILLING_EVENT_SOURCE): ids are unique per source.
 */
export interface EventIdentity {
  source: string;
  eventId: string;
  /** the outbox-id header, for the audit columns; null if absent */
  outboxId: string | null;
  /** true when only outbox-id was there */
  fallback: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const OUTBOX_ID = /^\d{1,19}$/;

export function eventIdentity(
  headers: Record<string, HeaderValue>,
  source: string,
): EventIdentity | undefined {
  const eventId = headerText(headers['outbox-event-id']);
  const outboxIdText = headerText(headers['outbox-id']);
  const outboxId =
    outboxIdText !== undefined && OUTBOX_ID.test(outboxIdText)
      ? outboxIdText
      : null;
  if (eventId !== undefined && UUID.test(eventId))
    return {
      source,
      eventId: eventId.toLowerCase(),
      outboxId,
      fallback: false,
    };
  if (outboxId !== null)
    return {
      source,
      eventId: `outbox-id:${outboxId}`,
      outboxId,
      fallback: true,
    };
  return undefined;
}
