//! Shared helpers of the ctdns fuzz targets: the input framing the multi-part targets use
//! (so the seed generator writes exactly what the targets read) and the fixed test PKI.

use std::net::{IpAddr, Ipv4Addr};

/// The fixed time (Unix seconds) the committed test PKI under `pki/` was generated at, and
/// at which `ct_decision` verifies: 2026-11-01T00:00:00Z.
pub const PKI_NOW_SECS: u64 = 1_793_491_200;

/// The IP address the seed leaves carry as their SAN (and `ct_decision` dials).
pub const LEAF_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53));

/// Trust anchor of the committed test PKI (DER), written by `examples/gen_seeds.rs`.
pub const PKI_ROOT_DER: &[u8] = include_bytes!("../pki/root.der");

/// Log list JSON of the committed test PKI's logs, written by `examples/gen_seeds.rs`.
pub const PKI_LOG_LIST_JSON: &[u8] = include_bytes!("../pki/log_list.json");

/// Splits `data` into parts: each part but the last is prefixed by its length as a
/// big-endian `u16`; the last part is whatever remains (possibly cut short). At most
/// `max` parts are returned, the last one taking the rest.
pub fn split(mut data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while parts.len() + 1 < max {
        let Some((len, rest)) = data.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            break;
        }
        let (part, rest) = rest.split_at(len);
        parts.push(part);
        data = rest;
    }
    parts.push(data);
    parts
}

/// The inverse of [`split`]: frames every part but the last with its `u16` length.
/// Parts longer than 65535 bytes are cut.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        if i == last {
            out.extend_from_slice(part);
        } else {
            let part = &part[..part.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_inverts_join() {
        let parts: [&[u8]; 3] = [b"leaf", b"", b"tail bytes"];
        assert_eq!(split(&join(&parts), 3), parts.to_vec());
        // A length running past the end leaves everything in one last part.
        assert_eq!(split(&[0, 9, 1], 3), vec![&[0u8, 9, 1][..]]);
    }
}
