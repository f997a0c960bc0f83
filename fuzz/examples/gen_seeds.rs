//! Writes the fuzz seed corpora and the fixed test PKI the targets load.
//!
//! ```text
//! cd fuzz && cargo run --example gen_seeds -- [CT_VECTORS_DIR]
//! cd fuzz && cargo run --example gen_seeds -- --check   # committed seeds still verify
//! ```
//!
//! Generates (at the fixed time `ctdns_fuzz::PKI_NOW_SECS`) a test PKI and writes its root
//! to `pki/root.der` and its log list to `pki/log_list.json`, then chains, SCT lists, OCSP
//! responses and DNS messages (built with hickory) under `corpus/<target>/`. When
//! the vectors directory (argument 1, default `../tests/data/ct-vectors`) exists, its certificates, `.proof`
//! SCTs and log lists are added too. Re-running replaces the PKI (new keys), so commit the
//! PKI and the corpus together. `GEN_SEEDS_OUT=DIR` writes under `DIR` instead. The honest
//! chains are checked to pass `CtVerifier::verify` before anything is written for them.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ctdns::ct::cert::LeafCert;
use ctdns::ct::sct::encode_sct_list;
use ctdns::pki::{
    default_logs, LeafIssuer, LeafKeyType, PkiOptions, PrecertIssuance, SctSpec, TestPki,
};
use ctdns_fuzz::{join, LEAF_IP, PKI_NOW_SECS};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Out {
    root: PathBuf,
}

impl Out {
    fn write(&self, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.root.join("corpus").join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)?;
        Ok(())
    }
}

fn main() -> Result<()> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if std::env::args().nth(1).as_deref() == Some("--check") {
        return check_committed(&here);
    }
    let vectors = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("../tests/data/ct-vectors"));
    // GEN_SEEDS_OUT writes somewhere else (e.g. to try the generator without touching
    // the committed files).
    let here = std::env::var_os("GEN_SEEDS_OUT").map_or(here, PathBuf::from);
    let out = Out { root: here.clone() };

    let now = time::OffsetDateTime::from_unix_timestamp(PKI_NOW_SECS as i64)?;
    let pki = TestPki::generate(&PkiOptions {
        now,
        ..PkiOptions::default()
    })?;
    fs::create_dir_all(here.join("pki"))?;
    fs::write(here.join("pki/root.der"), pki.root().der().as_ref())?;
    fs::write(here.join("pki/log_list.json"), pki.log_list_json(now)?)?;

    pki_seeds(&pki, &out)?;
    if vectors.is_dir() {
        vector_seeds(&vectors, &out)?;
    } else {
        eprintln!("{}: not found, CT vector seeds skipped", vectors.display());
    }
    dns_seeds(&out)?;
    log_list_mutation_seeds(&out)?;
    Ok(())
}

fn pki_seeds(pki: &TestPki, out: &Out) -> Result<()> {
    let ts = pki.now() - time::Duration::minutes(5);
    let sct = |log: &str| SctSpec::at(log, ts);
    let base = || pki.leaf_spec(LEAF_IP);
    let specs = [
        (
            "honest",
            base()
                .embed(sct(default_logs::ALPHA))
                .embed(sct(default_logs::GAMMA)),
        ),
        (
            "stapled",
            base()
                .embed(sct(default_logs::ALPHA))
                .staple(sct(default_logs::BETA))
                .staple(sct(default_logs::GAMMA)),
        ),
        ("one_sct", base().embed(sct(default_logs::ALPHA))),
        (
            "same_operator",
            base()
                .embed(sct(default_logs::ALPHA))
                .embed(sct(default_logs::BETA)),
        ),
        (
            "bad_signature",
            base()
                .embed(sct(default_logs::ALPHA).corrupt_signature())
                .embed(sct(default_logs::GAMMA)),
        ),
        (
            "leaf_index_ext",
            base()
                .embed(sct(default_logs::ALPHA).with_leaf_index(7)?)
                .embed(sct(default_logs::GAMMA)),
        ),
        (
            "precert_signer",
            LeafSpecExt::precert(
                base()
                    .embed(sct(default_logs::ALPHA))
                    .embed(sct(default_logs::DELTA)),
            ),
        ),
        (
            "rsa_leaf",
            LeafSpecExt::rsa(
                base()
                    .embed(sct(default_logs::ALPHA))
                    .embed(sct(default_logs::GAMMA)),
            ),
        ),
        (
            "from_root",
            base()
                .issued_by(LeafIssuer::Root)
                .embed(sct(default_logs::ALPHA))
                .embed(sct(default_logs::GAMMA)),
        ),
        (
            "rogue",
            base()
                .issued_by(LeafIssuer::RogueIntermediate)
                .embed(sct(default_logs::ALPHA))
                .embed(sct(default_logs::GAMMA)),
        ),
        ("no_scts", base()),
        ("staple_only", StapleExt::staple_empty(base())),
        (
            "ocsp_only",
            base()
                .staple(sct(default_logs::ALPHA))
                .staple(sct(default_logs::GAMMA).with_leaf_index(3)?),
        ),
        (
            "pending_log",
            base()
                .embed(sct(default_logs::PENDING))
                .embed(sct(default_logs::GAMMA)),
        ),
    ];
    for (name, spec) in specs {
        let leaf = pki.issue_leaf(&spec)?;
        if name == "honest" || name == "stapled" {
            check_accepted(pki, &leaf)?;
        }
        let ee = leaf.chain.first().ok_or("empty chain")?;
        let inter: &[u8] = leaf.chain.get(1).map_or(&[], |c| c.as_ref());
        let ocsp = leaf.ocsp_response.clone().unwrap_or_default();
        for flags in [0u8, 2, 4, 8] {
            if name != "honest" && flags != 0 {
                continue;
            }
            out.write(
                "ct_decision",
                &format!("pki_{name}_{flags}"),
                &join(&[&[flags], ee.as_ref(), inter, &ocsp]),
            )?;
        }
        out.write("precert_splice", &format!("pki_{name}"), ee.as_ref())?;
        if let Some(pre) = &leaf.precertificate {
            out.write(
                "precert_splice",
                &format!("pki_{name}_precert"),
                pre.as_ref(),
            )?;
        }
        let embedded: Vec<Vec<u8>> = leaf.embedded_scts.iter().map(|s| s.encode()).collect();
        if !embedded.is_empty() {
            out.write(
                "sct_list",
                &format!("pki_{name}"),
                &encode_sct_list(embedded.iter().map(Vec::as_slice)),
            )?;
        }
        if let Some(ocsp) = &leaf.ocsp_response {
            let parsed = LeafCert::parse(ee.as_ref())?;
            out.write(
                "ocsp",
                &format!("pki_{name}"),
                &join(&[parsed.serial(), ocsp]),
            )?;
            out.write(
                "ocsp",
                &format!("pki_{name}_other_serial"),
                &join(&[&[1], ocsp]),
            )?;
        }
    }
    Ok(())
}

/// The `ct_decision` seeds must reach the end of `CtVerifier::verify`: check that the
/// honest chains are accepted with the PKI files just written, at `PKI_NOW_SECS`.
fn check_accepted(pki: &TestPki, leaf: &ctdns::pki::IssuedLeaf) -> Result<()> {
    use ctdns::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
    use ctdns::tls::{roots::anchors_from_der, verifier::CtVerifier};
    use std::sync::Arc;
    let logs = LogList::from_json(pki.log_list_json(pki.now())?.as_bytes())?;
    let roots = anchors_from_der(&[pki.root().der().clone()], "test root")?;
    let verifier = CtVerifier::new(
        Arc::new(roots),
        CtChecker::new(Arc::new(logs), CtPolicy::chrome()),
    );
    let ocsp = leaf.ocsp_response.clone().unwrap_or_default();
    let ee = leaf.chain.first().ok_or("empty chain")?;
    let now =
        rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(PKI_NOW_SECS));
    let decision = verifier.verify(
        ee,
        leaf.chain.get(1..).unwrap_or(&[]),
        Some(LEAF_IP),
        None,
        &ocsp,
        now,
    );
    if let Some(refusal) = decision.refusal {
        return Err(format!("seed chain refused: {refusal}").into());
    }
    Ok(())
}

/// `--check`: the committed `ct_decision` seeds of honest chains must be accepted with the
/// committed `pki/` files (the ones the fuzz target compiles in), at `PKI_NOW_SECS`.
fn check_committed(here: &Path) -> Result<()> {
    use ctdns::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
    use ctdns::tls::{roots::anchors_from_der, verifier::CtVerifier};
    use std::sync::Arc;
    let logs = LogList::from_json(&fs::read(here.join("pki/log_list.json"))?)?;
    let root = CertificateDer::from(fs::read(here.join("pki/root.der"))?);
    let verifier = CtVerifier::new(
        Arc::new(anchors_from_der(&[root], "pki/root.der")?),
        CtChecker::new(Arc::new(logs), CtPolicy::chrome()),
    );
    let now =
        rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(PKI_NOW_SECS));
    for name in ["pki_honest_0", "pki_stapled_0", "pki_rsa_leaf_0"] {
        let seed = fs::read(here.join("corpus/ct_decision").join(name))?;
        let parts = ctdns_fuzz::split(&seed, 4);
        let [_, leaf, inter, ocsp] = parts.as_slice() else {
            return Err(format!("{name}: not four parts").into());
        };
        let chain = [CertificateDer::from(*inter)];
        let decision = verifier.verify(
            &CertificateDer::from(*leaf),
            &chain,
            Some(LEAF_IP),
            None,
            ocsp,
            now,
        );
        match decision.refusal {
            None => println!("{name}: accepted"),
            Some(r) => return Err(format!("{name}: refused: {r}").into()),
        }
    }
    Ok(())
}

/// A stapled OCSP response without SCTs.
trait StapleExt {
    fn staple_empty(self) -> Self;
}

impl StapleExt for ctdns::pki::LeafSpec {
    fn staple_empty(mut self) -> Self {
        self.staple_ocsp = true;
        self
    }
}

/// Small setters for the spec fields that have no builder method.
trait LeafSpecExt {
    fn precert(self) -> Self;
    fn rsa(self) -> Self;
}

impl LeafSpecExt for ctdns::pki::LeafSpec {
    fn precert(mut self) -> Self {
        self.precert = PrecertIssuance::PrecertSigningCert;
        self
    }
    fn rsa(mut self) -> Self {
        self.key_type = LeafKeyType::Rsa2048;
        self
    }
}

fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    let Ok(bytes) = fs::read(path) else {
        return Vec::new();
    };
    CertificateDer::pem_slice_iter(&bytes)
        .filter_map(|c| c.ok().map(|c| c.as_ref().to_vec()))
        .collect()
}

fn vector_seeds(dir: &Path, out: &Out) -> Result<()> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for path in files {
        let rel = path.strip_prefix(dir)?.to_string_lossy().replace('/', "_");
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "pem" => {
                let certs = pem_certs(&path);
                for (i, cert) in certs.iter().enumerate() {
                    out.write("precert_splice", &format!("{rel}_{i}"), cert)?;
                    if let Ok(leaf) = LeafCert::parse(cert) {
                        if let Ok(Some(list)) = leaf.sct_list() {
                            out.write("sct_list", &format!("{rel}_{i}"), list)?;
                        }
                    }
                }
                if let Some(leaf) = certs.first() {
                    let inter: &[u8] = certs.get(1).map_or(&[], Vec::as_slice);
                    out.write("ct_decision", &rel, &join(&[&[0], leaf, inter, &[]]))?;
                }
            }
            "proof" => {
                let sct = fs::read(&path)?;
                out.write("sct_list", &format!("{rel}_single"), &sct)?;
                out.write(
                    "sct_list",
                    &format!("{rel}_list"),
                    &encode_sct_list([&sct[..]]),
                )?;
            }
            // Keep the committed corpus small: only lists under 60 kB.
            "json" if fs::metadata(&path)?.len() < 60_000 => {
                let mut seed = vec![0u8];
                seed.extend(fs::read(&path)?);
                out.write("log_list", &rel, &seed)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn query(id: u16, name: &str, qtype: RecordType, edns: Option<(u16, bool, u8)>) -> Result<Vec<u8>> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name)?, qtype));
    if let Some((payload, dnssec_ok, version)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        e.set_version(version);
        m.set_edns(e);
    }
    Ok(m.to_vec()?)
}

fn response(q: &[u8], rcode: ResponseCode, answers: Vec<Record>, soa: bool) -> Result<Vec<u8>> {
    let q = Message::from_vec(q)?;
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.metadata.response_code = rcode;
    m.add_queries(q.queries.iter().cloned());
    m.answers = answers;
    if soa {
        m.authorities.push(Record::from_rdata(
            Name::from_ascii("example.com.")?,
            900,
            RData::SOA(SOA::new(
                Name::from_ascii("ns.example.com.")?,
                Name::from_ascii("hostmaster.example.com.")?,
                1,
                3600,
                600,
                86400,
                300,
            )),
        ));
    }
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    Ok(m.to_vec()?)
}

fn framed(msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

fn dns_seeds(out: &Out) -> Result<()> {
    let queries = [
        ("a", query(0x1234, "www.example.com.", RecordType::A, None)?),
        (
            "mixed_case",
            query(
                7,
                "WwW.ExAmPlE.CoM.",
                RecordType::AAAA,
                Some((1232, false, 0)),
            )?,
        ),
        (
            "do",
            query(8, "example.com.", RecordType::DNSKEY, Some((4096, true, 0)))?,
        ),
        (
            "small_payload",
            query(9, "example.com.", RecordType::TXT, Some((100, false, 0)))?,
        ),
        (
            "badvers",
            query(10, "example.com.", RecordType::A, Some((1232, false, 1)))?,
        ),
        ("root_ns", query(11, ".", RecordType::NS, None)?),
    ];
    let mut notify = query(12, "example.com.", RecordType::SOA, None)?;
    notify[2] = (notify[2] & 0x87) | (4 << 3); // opcode NOTIFY
    let mut as_response = query(13, "example.com.", RecordType::A, None)?;
    as_response[2] |= 0x80;
    let a = |name: &str, last| -> Result<Record> {
        Ok(Record::from_rdata(
            Name::from_ascii(name)?,
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        ))
    };

    for (name, q) in &queries {
        for flags in [0u8, 1, 2, 5, 6, 7, 8, 16] {
            out.write(
                "stub_query",
                &format!("{name}_{flags}"),
                &join(&[&[flags], q, &300u32.to_be_bytes()]),
            )?;
        }
        let qname = Message::from_vec(q)?
            .queries
            .first()
            .map(|q| q.name().to_ascii())
            .unwrap_or_default();
        let responses = [
            (
                "noerror",
                response(
                    q,
                    ResponseCode::NoError,
                    vec![a(&qname, 1)?, a(&qname, 2)?],
                    false,
                )?,
            ),
            (
                "nxdomain",
                response(q, ResponseCode::NXDomain, vec![], true)?,
            ),
            (
                "cname",
                response(
                    q,
                    ResponseCode::NoError,
                    vec![
                        Record::from_rdata(
                            Name::from_ascii(&qname)?,
                            60,
                            RData::CNAME(CNAME(Name::from_ascii("target.example.net.")?)),
                        ),
                        a("target.example.net.", 3)?,
                    ],
                    false,
                )?,
            ),
            (
                "servfail",
                response(q, ResponseCode::ServFail, vec![], false)?,
            ),
        ];
        for (rname, r) in &responses {
            out.write(
                "upstream_response",
                &format!("{name}_{rname}"),
                &join(&[&[0], q, &framed(&[r])]),
            )?;
            // DoH: the body alone (ID 0 as the server sees it).
            let mut body = r.clone();
            body[..2].copy_from_slice(&[0, 0]);
            out.write(
                "upstream_response",
                &format!("{name}_{rname}_doh"),
                &join(&[&[16], q, &body]),
            )?;
            // The stub's upstream answering with these exact bytes (ID patched).
            out.write(
                "stub_query",
                &format!("{name}_{rname}_raw"),
                &join(&[&[2], q, r]),
            )?;
        }
        // Two frames on one DoT stream: an unrelated one first.
        let other = query(0x4321, "other.example.", RecordType::A, None)?;
        let other_r = response(
            &other,
            ResponseCode::NoError,
            vec![a("other.example.", 9)?],
            false,
        )?;
        out.write(
            "upstream_response",
            &format!("{name}_two_frames"),
            &join(&[&[0], q, &framed(&[&other_r, &responses[0].1])]),
        )?;
    }
    for (name, msg) in [("notify", &notify), ("qr_set", &as_response)] {
        for flags in [0u8, 8] {
            let client = if flags & 8 != 0 {
                framed(&[msg])
            } else {
                msg.clone()
            };
            out.write(
                "stub_query",
                &format!("{name}_{flags}"),
                &join(&[&[flags], &client, &[]]),
            )?;
        }
    }
    // TCP: several framed queries in one stream.
    let stream = framed(&[&queries[0].1, &queries[1].1, &queries[2].1]);
    out.write("stub_query", "tcp_stream", &join(&[&[8], &stream, &[]]))?;
    Ok(())
}

fn log_list_mutation_seeds(out: &Out) -> Result<()> {
    // Mode byte (odd: structured; bit 1 picks the base list), then edit bytes.
    let seeds: [&[u8]; 4] = [
        &[1, 0, 7, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        &[3, 1, 4, 3, 1, 2, 0, 3, 4, b'x', b'y', b'z', b'!'],
        &[1, 2, 6, 4, 1, 3, 0, 1, 6, 4, 1, 3, 0, 1, 0],
        &[3, 3, 0, 2, 1, 0, 1, 5, 1, 2, 0, 0, 1, 2, 0, 0, 1, 2, 3],
    ];
    for (i, seed) in seeds.iter().enumerate() {
        out.write("log_list", &format!("mutation_{i}"), seed)?;
    }
    let mut own = vec![0u8];
    own.extend(fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/ctdns-verify/certs/ct_log_list.json"),
    )?);
    out.write("log_list", "bundled", &own)?;
    let mut test = vec![0u8];
    test.extend(fs::read(out.root.join("pki/log_list.json"))?);
    out.write("log_list", "test_pki", &test)?;
    Ok(())
}
