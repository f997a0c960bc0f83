//! The local stub server: UDP and TCP listeners for local clients, and the answer cache.
