//! TLS verification: the rustls `ServerCertVerifier` that enforces chain, IP SAN, CT policy,
//! issuer pins and the denylist, and the client configuration built around it.
