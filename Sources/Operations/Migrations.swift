/// One schema change, applied once, in version order.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
}

/// Every migration Depot knows, oldest first. Never edit one that has shipped: add a new one.
public enum Migrations {
    /// A service's inbox (message ids already handled) and outbox (messages committed with the
    /// state change, published by the relay and deleted once confirmed).
    static func inboxAndOutbox(_ schema: String) -> String {
        """
        CREATE TABLE \(schema).inbox (
            message_id uuid PRIMARY KEY,
            received_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE \(schema).outbox (
            position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            message_id uuid NOT NULL,
            message_type text NOT NULL,
            exchange text NOT NULL,
            routing_key text NOT NULL,
            correlation_id text NOT NULL,
            causation_id uuid,
            traceparent text,
            body bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        """
    }

    public static let all: [Migration] = [
        Migration(
            version: 1, name: "service schemas",
            sql: """
                -- One schema per service: each service touches only its own.
                CREATE SCHEMA IF NOT EXISTS orders;
                CREATE SCHEMA IF NOT EXISTS inventory;
                CREATE SCHEMA IF NOT EXISTS payments;
                CREATE SCHEMA IF NOT EXISTS edge;
                CREATE SCHEMA IF NOT EXISTS eventlog;
                CREATE SCHEMA IF NOT EXISTS projections;
                """),
        Migration(
            version: 2, name: "order saga: services, outboxes, inboxes, event log, projections",
            sql: """
                \(["orders", "inventory", "payments"].map(inboxAndOutbox).joined(separator: "\n"))

                CREATE TABLE inventory.products (
                    sku text PRIMARY KEY,
                    name text NOT NULL,
                    price_cents bigint NOT NULL CHECK (price_cents >= 0),
                    initial_stock bigint NOT NULL CHECK (initial_stock >= 0),
                    adjustments bigint NOT NULL DEFAULT 0,
                    available bigint NOT NULL CHECK (available >= 0),
                    reserved bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
                    sold bigint NOT NULL DEFAULT 0 CHECK (sold >= 0),
                    discontinued boolean NOT NULL DEFAULT false,
                    version bigint NOT NULL DEFAULT 1,
                    updated_at timestamptz NOT NULL DEFAULT now()
                );
                -- One row per order inventory has heard of: reserved, rejected, released, sold,
                -- or cancelled (the cancel arrived before the order).
                CREATE TABLE inventory.reservations (
                    order_id uuid PRIMARY KEY,
                    status text NOT NULL,
                    lines jsonb NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now()
                );

                CREATE TABLE orders.orders (
                    id uuid PRIMARY KEY,
                    customer_id text NOT NULL,
                    status text NOT NULL,
                    lines jsonb NOT NULL,
                    payment_token text NOT NULL,
                    total_cents bigint,
                    reason text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                );
                -- The saga's durable timer: a reserved order whose payment has not answered by due_at is cancelled.
                CREATE TABLE orders.payment_deadlines (
                    order_id uuid PRIMARY KEY,
                    due_at timestamptz NOT NULL,
                    causation_id uuid NOT NULL
                );
                CREATE INDEX payment_deadlines_due ON orders.payment_deadlines (due_at);

                CREATE TABLE payments.charges (
                    order_id uuid PRIMARY KEY,
                    status text NOT NULL,
                    amount_cents bigint,
                    reference text,
                    reason text,
                    updated_at timestamptz NOT NULL DEFAULT now()
                );
                -- The simulated provider's own books, kept apart as a real provider's would be:
                -- one row per idempotency key, so a repeated charge is answered, not charged again.
                CREATE TABLE payments.simulated_provider (
                    idempotency_key text PRIMARY KEY,
                    token text NOT NULL,
                    amount_cents bigint NOT NULL,
                    calls integer NOT NULL,
                    outcome text,
                    reference text,
                    refunded boolean NOT NULL DEFAULT false
                );

                -- The global, append-only event log.
                CREATE TABLE eventlog.events (
                    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    id uuid NOT NULL UNIQUE,
                    type text NOT NULL,
                    version integer NOT NULL,
                    correlation_id text NOT NULL,
                    causation_id uuid,
                    occurred_at timestamptz NOT NULL,
                    recorded_at timestamptz NOT NULL DEFAULT now(),
                    traceparent text,
                    body text NOT NULL
                );
                CREATE INDEX events_correlation ON eventlog.events (correlation_id, position);
                CREATE INDEX events_type ON eventlog.events (type, position);

                CREATE TABLE projections.orders (
                    id uuid PRIMARY KEY,
                    customer_id text NOT NULL,
                    status text NOT NULL,
                    lines jsonb NOT NULL,
                    total_cents bigint,
                    payment_status text NOT NULL,
                    payment_reference text,
                    reason text,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL,
                    version bigint NOT NULL,
                    position bigint NOT NULL
                );
                CREATE INDEX orders_customer ON projections.orders (customer_id, created_at DESC, id DESC);
                CREATE INDEX orders_created ON projections.orders (created_at DESC, id DESC);
                CREATE TABLE projections.order_history (
                    order_id uuid NOT NULL,
                    position bigint NOT NULL,
                    type text NOT NULL,
                    occurred_at timestamptz NOT NULL,
                    PRIMARY KEY (order_id, position)
                );
                CREATE TABLE projections.products (
                    sku text PRIMARY KEY,
                    name text NOT NULL,
                    price_cents bigint NOT NULL,
                    stock_available bigint NOT NULL,
                    stock_reserved bigint NOT NULL,
                    stock_sold bigint NOT NULL,
                    discontinued boolean NOT NULL,
                    version bigint NOT NULL,
                    updated_at timestamptz NOT NULL,
                    position bigint NOT NULL
                );
                -- How far each projection has read the log.
                CREATE TABLE projections.checkpoints (
                    projection text PRIMARY KEY,
                    position bigint NOT NULL
                );
                """),
        Migration(
            version: 3, name: "edge: idempotency keys",
            sql: """
                -- One row per (caller, Idempotency-Key): the order it names and the request in canonical form,
                -- so a repeat gets the same order and a different body gets 409. Kept 7 days.
                CREATE TABLE edge.idempotency_keys (
                    subject text NOT NULL,
                    key text NOT NULL,
                    request text NOT NULL,
                    order_id uuid NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (subject, key)
                );
                CREATE INDEX idempotency_keys_created ON edge.idempotency_keys (created_at);
                """),
        Migration(
            version: 4, name: "edge: admin jobs",
            sql: """
                -- The admin API's jobs, so that every edge behind a balancer answers for every job. The edge
                -- running one rewrites its row every second, never with an older revision; one left unfinished
                -- and unwritten for 30 s is shown failed (its edge stopped). Kept 30 days.
                CREATE TABLE edge.admin_jobs (
                    id uuid PRIMARY KEY,
                    created_at timestamptz NOT NULL,
                    revision integer NOT NULL,
                    document jsonb NOT NULL,
                    written_at timestamptz NOT NULL
                );
                CREATE INDEX admin_jobs_created ON edge.admin_jobs (created_at);
                """),
    ]
}
