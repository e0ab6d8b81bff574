-- The delivery queue: one row per accepted message, from `queued` through
-- `sending` (claimed by a worker under a lease) to `sent` or `failed`.
CREATE TABLE cmsi_mail_message (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The bk_app_code that sent it; an app sees only its own mail.
    app_code               TEXT NOT NULL,
    -- Our Message-ID, without angle brackets.
    message_id             TEXT NOT NULL,
    -- The caller's Idempotency-Key, unique per app; cleared when it expires.
    idempotency_key        TEXT,
    idempotency_expires_at TIMESTAMPTZ,
    state                  TEXT NOT NULL DEFAULT 'queued'
                           CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    -- The SMTP envelope.
    sender                 TEXT NOT NULL,
    recipients             TEXT[] NOT NULL,
    -- The composed message; NULL once sent.
    message                BYTEA,
    message_size           BIGINT NOT NULL,
    -- The `data` of the first answer, returned again for a repeated key.
    response               JSONB NOT NULL,
    -- Attempts started, an interrupted one included.
    attempts               INTEGER NOT NULL DEFAULT 0,
    -- When the row is due: the next attempt while `queued`, the end of the
    -- lease while `sending` (so that a dead worker's row becomes due again).
    next_attempt_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The worker of the latest claim, kept after it ends.
    locked_by              TEXT,
    -- The token of the current claim: only its holder may mark the row.
    lease                  BIGINT,
    locked_until           TIMESTAMPTZ,
    -- The reason of the latest failed attempt.
    last_error             TEXT,
    -- The receipt.
    accepted               TEXT[] NOT NULL DEFAULT '{}',
    rejected               JSONB NOT NULL DEFAULT '[]',
    transport_id           TEXT,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at                TIMESTAMPTZ
);

-- Composed mail is mostly base64 and does not compress well: store it
-- out of line without spending the accept path's time on compression.
ALTER TABLE cmsi_mail_message ALTER COLUMN message SET STORAGE EXTERNAL;

CREATE UNIQUE INDEX cmsi_mail_message_message_id ON cmsi_mail_message (message_id);
CREATE UNIQUE INDEX cmsi_mail_message_idempotency
    ON cmsi_mail_message (app_code, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX cmsi_mail_message_idempotency_expiry
    ON cmsi_mail_message (idempotency_expires_at) WHERE idempotency_key IS NOT NULL;
-- What the workers claim.
CREATE INDEX cmsi_mail_message_due
    ON cmsi_mail_message (next_attempt_at) WHERE state IN ('queued', 'sending');
-- `queue list` and the retention purge.
CREATE INDEX cmsi_mail_message_state_updated ON cmsi_mail_message (state, updated_at);

-- Token buckets that pace delivery across every worker on every machine.
CREATE TABLE cmsi_mail_pace (
    name        TEXT PRIMARY KEY,
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_at TIMESTAMPTZ NOT NULL
);

-- Takes one token from the bucket `bucket` (refilled at `rate` per second, at
-- most `burst` tokens): 0 when taken, else the seconds until one is there.
-- Uses the database's clock, the one clock all machines share.
CREATE FUNCTION cmsi_mail_take_token(bucket TEXT, rate DOUBLE PRECISION, burst DOUBLE PRECISION)
RETURNS DOUBLE PRECISION
LANGUAGE plpgsql AS $$
DECLARE
    moment    TIMESTAMPTZ;
    available DOUBLE PRECISION;
BEGIN
    INSERT INTO cmsi_mail_pace (name, tokens, refilled_at)
        VALUES (bucket, burst, clock_timestamp())
        ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM cmsi_mail_pace WHERE name = bucket FOR UPDATE;
    -- Read the clock only once the row is ours, so that time never runs backwards.
    moment := clock_timestamp();
    SELECT LEAST(burst, tokens + GREATEST(0, EXTRACT(EPOCH FROM moment - refilled_at)) * rate)
        INTO available FROM cmsi_mail_pace WHERE name = bucket;
    IF available >= 1 THEN
        UPDATE cmsi_mail_pace SET tokens = available - 1, refilled_at = moment WHERE name = bucket;
        RETURN 0;
    END IF;
    UPDATE cmsi_mail_pace SET tokens = available, refilled_at = moment WHERE name = bucket;
    RETURN (1 - available) / rate;
END
$$;
