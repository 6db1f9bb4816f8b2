-- Deprovisionings the circuit breaker admitted that C4C has not confirmed yet (so that are not
-- in applied_changes yet), one row each, so that every replica counts the other replicas' too.
-- A row is deleted once its change is journaled or has failed; a replica that dies leaves its
-- rows behind, and they stop counting after a while (safety::IN_FLIGHT_EXPIRY).
CREATE TABLE safety_in_flight (
    id          TEXT PRIMARY KEY,
    -- The identity-provider client, '' for none (as the breaker keys its counts).
    client      TEXT NOT NULL,
    admitted_at BIGINT NOT NULL
);
CREATE INDEX safety_in_flight_client ON safety_in_flight (client, admitted_at);
