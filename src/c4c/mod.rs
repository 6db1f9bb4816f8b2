//! C4C OData v2 client. Knows nothing of SCIM.
