//! Provisioning use cases: users, groups, bulk; owns idempotency and the outbox.
