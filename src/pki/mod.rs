//! A test PKI generator: CA, intermediate, CT logs with real keys, leaves with IP SANs and
//! embedded SCTs, and a matching log list. For tests, benchmarks, demos and `ctdns pki`.
