//! The test PKI (the `ctdns-verify` crate's `pki`, feature `testkit`, re-exported), plus
//! writing one to disk for `ctdns pki`, unbound and dnsdist, and the demo PKI.

mod files;

pub use ctdns_verify::pki::*;
pub use files::{demo_pki, write_files, WrittenFiles};
