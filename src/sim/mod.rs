//! A strict C4C OData v2 simulator with fault injection, for tests, the demo and benchmarks.
