//! SCIM 2.0 protocol (RFC 7643/7644): schemas, filters, PATCH, lists, errors. Knows nothing of C4C or HTTP frameworks.
