//! Matrix section: IP SAN and DNS name.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let leaf = |spec: &LeafSpec| w.issue(spec);
    v.push(
        Case::new(
            "IP only in the subject CN",
            w,
            leaf(&LeafSpec {
                ip_sans: Vec::new(),
                common_name: Some("127.0.0.1".into()),
                dns_sans: vec![DNS_NAME.into()],
                ..w.embedded(&[default_logs::ALPHA, default_logs::BETA])
            }),
        )
        .refused("ip-san")
        .check(
            "IpSanMismatch for 127.0.0.1",
            |r| matches!(r, Refusal::IpSanMismatch { ip, .. } if *ip == LOCALHOST),
        )
        .tls(),
    );
    v.push(
        Case::new(
            "certificate for another IP",
            w,
            leaf(
                &w.pki
                    .leaf_spec(OTHER_IP)
                    .embed(w.sct(default_logs::ALPHA))
                    .embed(w.sct(default_logs::BETA)),
            ),
        )
        .refused("ip-san")
        .check(
            "IpSanMismatch for 127.0.0.1",
            |r| matches!(r, Refusal::IpSanMismatch { ip, .. } if *ip == LOCALHOST),
        )
        .tls(),
    );
    v.push(
        Case::new(
            "offline audit without --ip skips only the IP rule",
            w,
            leaf(
                &w.pki
                    .leaf_spec(OTHER_IP)
                    .embed(w.sct(default_logs::ALPHA))
                    .embed(w.sct(default_logs::BETA)),
            ),
        )
        .ip(None)
        .accepted(),
    );
    let named = || {
        leaf(&LeafSpec {
            dns_sans: vec![DNS_NAME.into()],
            ..w.embedded(&[default_logs::ALPHA, default_logs::BETA])
        })
    };
    v.push(
        Case::new("configured DNS name matches", w, named())
            .verifier(
                w.verifier()
                    .with_dns_name(ServerName::try_from(DNS_NAME).unwrap()),
            )
            .accepted()
            .tls(),
    );
    v.push(
        Case::new("configured DNS name does not match", w, named())
            .verifier(
                w.verifier()
                    .with_dns_name(ServerName::try_from("other.ctdns.test").unwrap()),
            )
            .refused("dns-name")
            .check("DnsNameMismatch for other.ctdns.test", |r| {
                matches!(r, Refusal::DnsNameMismatch { name, .. } if name == "other.ctdns.test")
            })
            .tls(),
    );
    v.push(
        Case::new("per-call DNS name does not match", w, named())
            .dns("other.ctdns.test")
            .refused("dns-name"),
    );
    v.push(
        Case::new("SNI is a DNS name and no dialed IP is known", w, named())
            .tls_only_named(DNS_NAME)
            .refused("ip-san")
            .check(
                "NotDialedByIp(dns.ctdns.test)",
                |r| matches!(r, Refusal::NotDialedByIp(name) if name == DNS_NAME),
            ),
    );
    v.push(
        Case::new("SNI is a DNS name, dialed IP configured", w, named())
            .verifier(w.verifier().with_dialed_ip(LOCALHOST))
            .tls_only_named(DNS_NAME)
            .accepted(),
    );
    v.push(
        Case::new(
            "SNI is a DNS name, dialed IP not in the certificate",
            w,
            named(),
        )
        .verifier(w.verifier().with_dialed_ip(OTHER_IP))
        .tls_only_named(DNS_NAME)
        .refused("ip-san"),
    );
    v.push(
        Case::new(
            "SNI is the wrong DNS name, dialed IP configured",
            w,
            named(),
        )
        .verifier(w.verifier().with_dialed_ip(LOCALHOST))
        .tls_only_named("other.ctdns.test")
        .refused("dns-name"),
    );
}
