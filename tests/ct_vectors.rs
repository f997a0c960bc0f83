//! The certificate-side CT primitives against the real, public vectors in
//! `tests/data/ct-vectors` (see its README): embedded SCTs from production and test
//! certificates, detached `.proof` SCTs, an RSA test log, and the README's negative
//! checks. Every expectation comes from the vectors' own table or README.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use ctdns::ct::cert::{spki_of_cert, LeafCert};
use ctdns::ct::der::{tag, Reader};
use ctdns::ct::sct::{parse_sct, parse_sct_list};
use ctdns::ct::sha256;
use ctdns::ct::signature::{default_algorithms, verify_sct_signature, SctSignatureError};
use ctdns::ct::signed_data::{signed_data, SignedEntry};
use ctdns::ct::{LogId, Sct};

const TEST_LOG_KEY: &str = "google-ct-cpp/ct-server-key-public.pem";
const RSA_TEST_LOG_KEY: &str = "google-ct-cpp/rsa/ct-server-key-public-rsa.pem";

fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ct-vectors")
}

fn read(rel: &str) -> Vec<u8> {
    let path = vectors_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// All PEM blocks labelled `label`, in order. Text before, between and after blocks
/// (e.g. `openssl x509 -text` dumps) is skipped.
fn pem_blocks(text: &[u8], label: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(text);
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = &*text;
    while let Some(start) = rest.find(&begin) {
        let body_start = start + begin.len();
        let stop = rest[body_start..]
            .find(&end)
            .unwrap_or_else(|| panic!("unterminated PEM block {label}"));
        let b64: String = rest[body_start..body_start + stop]
            .split_whitespace()
            .collect();
        out.push(B64.decode(b64).expect("PEM base64"));
        rest = &rest[body_start + stop + end.len()..];
    }
    out
}

/// A certificate by vector path: `.der` as is; `.pem` → first block, or block `i` for
/// `path[i]`.
fn cert(spec: &str) -> Vec<u8> {
    let (path, index) = match spec.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
        Some((path, i)) => (path, i.parse::<usize>().expect("chain index")),
        None => (spec, 0),
    };
    let bytes = read(path);
    if path.ends_with(".der") {
        assert_eq!(index, 0);
        return bytes;
    }
    pem_blocks(&bytes, "CERTIFICATE")
        .into_iter()
        .nth(index)
        .unwrap_or_else(|| panic!("{spec}: no such certificate"))
}

fn public_key(rel: &str) -> Vec<u8> {
    let mut blocks = pem_blocks(&read(rel), "PUBLIC KEY");
    assert_eq!(blocks.len(), 1, "{rel}");
    blocks.remove(0)
}

fn issuer_key_hash(issuer_spec: &str) -> [u8; 32] {
    sha256(spki_of_cert(&cert(issuer_spec)).expect("issuer parses"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every log key the vectors know: the two test logs plus every log (and tiled log)
/// in every real log list snapshot, keyed by log id. Each list's `log_id` is checked
/// against the SHA-256 of its key.
fn known_logs() -> Vec<(LogId, Vec<u8>)> {
    let mut logs = Vec::new();
    for rel in [TEST_LOG_KEY, RSA_TEST_LOG_KEY] {
        let spki = public_key(rel);
        logs.push((LogId::from_spki(&spki), spki));
    }
    let dir = vectors_dir().join("loglists");
    let mut lists: Vec<_> = std::fs::read_dir(&dir)
        .expect("loglists dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    lists.sort();
    assert!(lists.len() >= 6, "expected the 6 log list snapshots");
    for path in lists {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read list")).expect("json");
        let operators = json["operators"].as_array().expect("operators");
        for op in operators {
            for kind in ["logs", "tiled_logs"] {
                for log in op[kind].as_array().into_iter().flatten() {
                    let key = B64
                        .decode(log["key"].as_str().expect("key"))
                        .expect("b64 key");
                    let id = B64
                        .decode(log["log_id"].as_str().expect("log_id"))
                        .expect("b64 log_id");
                    let log_id = LogId::from_spki(&key);
                    assert_eq!(
                        log_id.0.as_slice(),
                        id,
                        "{}: log_id != sha256(key)",
                        path.display()
                    );
                    logs.push((log_id, key));
                }
            }
        }
    }
    logs
}

fn log_key<'a>(logs: &'a [(LogId, Vec<u8>)], id: &LogId) -> &'a [u8] {
    logs.iter()
        .find(|(l, _)| l == id)
        .map(|(_, k)| k.as_slice())
        .unwrap_or_else(|| panic!("no key for log {id}"))
}

fn log_id_b64(b64: &str) -> LogId {
    let v = B64.decode(b64).expect("b64");
    LogId(v.try_into().expect("32 bytes"))
}

/// The embedded SCTs of a leaf.
fn embedded_scts(leaf: &LeafCert<'_>) -> Vec<Sct> {
    let list = leaf.sct_list().expect("SCT ext").expect("has SCTs");
    let parsed = parse_sct_list(list).expect("SCT list parses");
    assert_eq!(parsed.skipped_unknown_version, 0);
    parsed.scts
}

fn verify(sct: &Sct, entry: SignedEntry<'_>, key: &[u8]) -> Result<(), SctSignatureError> {
    verify_sct_signature(sct, entry, key, default_algorithms())
}

fn proof(rel: &str) -> Sct {
    parse_sct(&read(rel), 0).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn pem_helper_skips_text_dumps_and_reads_chains() {
    let raw = read("google-ct-cpp/ca-cert.pem");
    assert!(raw.starts_with(b"Certificate:"), "has a text dump first");
    assert_eq!(pem_blocks(&raw, "CERTIFICATE").len(), 1);
    assert_eq!(
        pem_blocks(&read("chromium/cert-manager.com-chain.pem"), "CERTIFICATE").len(),
        4
    );
    assert_ne!(
        cert("chromium/cert-manager.com-chain.pem[1]"),
        cert("chromium/cert-manager.com-chain.pem")
    );
}

#[test]
fn every_row_of_the_sct_table_is_decided_as_expected() {
    let table = String::from_utf8(read("sct-table.tsv")).expect("utf8");
    let mut lines = table.lines();
    let header: Vec<_> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (c_leaf, c_issuer, c_id, c_ts, c_expected) = (
        col("leaf"),
        col("issuer"),
        col("log_id_b64"),
        col("timestamp_ms"),
        col("expected"),
    );
    let logs = known_logs();
    let (mut valid, mut invalid) = (0, 0);
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<_> = line.split('\t').collect();
        let leaf_der = cert(f[c_leaf]);
        let leaf = LeafCert::parse(&leaf_der).unwrap_or_else(|e| panic!("{}: {e}", f[c_leaf]));
        let id = log_id_b64(f[c_id]);
        let ts: u64 = f[c_ts].parse().expect("timestamp");
        let scts = embedded_scts(&leaf);
        let sct = scts
            .iter()
            .find(|s| s.log_id == id && s.timestamp == ts)
            .unwrap_or_else(|| panic!("{}: no SCT from {id} at {ts}", f[c_leaf]));
        let tbs = leaf.precert_tbs().expect("precert TBS");
        let entry = SignedEntry::Precert {
            issuer_key_hash: issuer_key_hash(f[c_issuer]),
            tbs: &tbs,
        };
        let got = verify(sct, entry, log_key(&logs, &id));
        match f[c_expected] {
            "VALID" => {
                assert_eq!(got, Ok(()), "{} / {}", f[c_leaf], f[c_id]);
                valid += 1;
            }
            "INVALID" => {
                assert_eq!(
                    got,
                    Err(SctSignatureError::InvalidSignature),
                    "{} / {}",
                    f[c_leaf],
                    f[c_id]
                );
                invalid += 1;
            }
            other => panic!("unknown expectation {other}"),
        }
    }
    assert_eq!((valid, invalid), (43, 2), "the README's 45 SCTs");
}

#[test]
fn x509_entry_proofs_are_valid() {
    let key = public_key(TEST_LOG_KEY);
    for (leaf, proof_file) in [
        (
            "google-ct-cpp/test-cert.pem",
            "google-ct-cpp/test-cert.proof",
        ),
        (
            "google-ct-cpp/test-intermediate-cert.pem",
            "google-ct-cpp/test-intermediate-cert.proof",
        ),
    ] {
        let der = cert(leaf);
        let sct = proof(proof_file);
        assert_eq!(sct.log_id, LogId::from_spki(&key));
        assert_eq!(
            verify(&sct, SignedEntry::X509 { leaf: &der }, &key),
            Ok(()),
            "{leaf}"
        );
        // The same SCT does not cover the TBS alone.
        let tbs = LeafCert::parse(&der).unwrap().tbs().to_vec();
        assert_eq!(
            verify(&sct, SignedEntry::X509 { leaf: &tbs }, &key),
            Err(SctSignatureError::InvalidSignature)
        );
    }
}

#[test]
fn precert_proofs_verify_against_the_final_cert_and_preca_naive_tbs_fails() {
    let key = public_key(TEST_LOG_KEY);
    // (final cert, precert, proof, issuer of the final cert, naive TBS-minus-poison valid?)
    let cases = [
        (
            "test-embedded-cert.pem",
            "test-embedded-pre-cert.pem",
            "test-embedded-pre-cert.proof",
            "ca-cert.pem",
            true,
        ),
        (
            "test-embedded-with-intermediate-cert.pem",
            "test-embedded-with-intermediate-pre-cert.pem",
            "test-embedded-with-intermediate-pre-cert.proof",
            "intermediate-cert.pem",
            true,
        ),
        (
            "test-embedded-with-preca-cert.pem",
            "test-embedded-with-preca-pre-cert.pem",
            "test-embedded-with-preca-pre-cert.proof",
            "ca-cert.pem",
            false,
        ),
        (
            "test-embedded-with-intermediate-preca-cert.pem",
            "test-embedded-with-intermediate-preca-pre-cert.pem",
            "test-embedded-with-intermediate-preca-pre-cert.proof",
            "intermediate-cert.pem",
            false,
        ),
    ];
    for (final_cert, precert, proof_file, issuer, naive_valid) in cases {
        let p = |f: &str| format!("google-ct-cpp/{f}");
        let sct = proof(&p(proof_file));
        let ikh = issuer_key_hash(&p(issuer));

        let final_der = cert(&p(final_cert));
        let final_leaf = LeafCert::parse(&final_der).unwrap();
        let tbs = final_leaf.precert_tbs().unwrap();
        let entry = SignedEntry::Precert {
            issuer_key_hash: ikh,
            tbs: &tbs,
        };
        assert_eq!(
            verify(&sct, entry, &key),
            Ok(()),
            "{proof_file} vs {final_cert}"
        );
        // The proof is the SCT embedded in the final certificate.
        assert!(embedded_scts(&final_leaf).contains(&sct), "{final_cert}");

        let pre_der = cert(&p(precert));
        let pre = LeafCert::parse(&pre_der).unwrap();
        assert_eq!(pre.sct_list(), Ok(None));
        let naive = pre.tbs_without_poison().unwrap();
        let entry = SignedEntry::Precert {
            issuer_key_hash: ikh,
            tbs: &naive,
        };
        let want = if naive_valid {
            Ok(())
        } else {
            Err(SctSignatureError::InvalidSignature)
        };
        assert_eq!(
            verify(&sct, entry, &key),
            want,
            "{proof_file} vs naive {precert}"
        );
        assert_eq!(naive == tbs, naive_valid, "{precert}");
    }
}

#[test]
fn rsa_log_proofs_are_valid_with_the_rsa_key_only() {
    let rsa = public_key(RSA_TEST_LOG_KEY);
    let ec = public_key(TEST_LOG_KEY);
    assert_eq!(
        LogId::from_spki(&rsa).to_base64(),
        "oCQsumIkVhezsKvGJ+spTJIM9H+jy/OdvSGDIX0VsgY="
    );

    let leaf = cert("google-ct-cpp/test-cert.pem");
    let sct = proof("google-ct-cpp/rsa/test-cert-rsa.proof");
    assert_eq!(sct.sig_alg, 1);
    assert_eq!(sct.log_id, LogId::from_spki(&rsa));
    let x509 = SignedEntry::X509 { leaf: &leaf };
    assert_eq!(verify(&sct, x509, &rsa), Ok(()));
    assert_eq!(
        verify(&sct, x509, &ec),
        Err(SctSignatureError::KeyAlgorithmMismatch)
    );

    let final_der = cert("google-ct-cpp/test-embedded-cert.pem");
    let tbs = LeafCert::parse(&final_der).unwrap().precert_tbs().unwrap();
    let sct = proof("google-ct-cpp/rsa/test-embedded-pre-cert-rsa.proof");
    let entry = SignedEntry::Precert {
        issuer_key_hash: issuer_key_hash("google-ct-cpp/ca-cert.pem"),
        tbs: &tbs,
    };
    assert_eq!(verify(&sct, entry, &rsa), Ok(()));
    let mut later = sct.clone();
    later.timestamp += 1;
    assert_eq!(
        verify(&later, entry, &rsa),
        Err(SctSignatureError::InvalidSignature)
    );
}

#[test]
fn duckduckgo_figures_and_negative_checks() {
    let leaf_der = cert("real/rustls-bench/cert-duckduckgo.0.der");
    let leaf = LeafCert::parse(&leaf_der).unwrap();
    let ikh = issuer_key_hash("real/rustls-bench/cert-duckduckgo.1.der");
    assert_eq!(
        hex(&ikh),
        "59e738e674221702af1edb87c5200c1a4b75f64fae3d2c3d265124c61bd83c79"
    );
    let tbs = leaf.precert_tbs().unwrap();
    assert_eq!((leaf.tbs().len(), tbs.len()), (1499, 1111));

    let logs = known_logs();
    let scts = embedded_scts(&leaf);
    let sct = &scts[0];
    assert_eq!(
        sct.log_id,
        log_id_b64("1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc=")
    );
    let key = log_key(&logs, &sct.log_id);
    let good = SignedEntry::Precert {
        issuer_key_hash: ikh,
        tbs: &tbs,
    };
    assert_eq!(verify(sct, good, key), Ok(()));

    let invalid = Err(SctSignatureError::InvalidSignature);
    let root_hash = issuer_key_hash("real/rustls-bench/cert-duckduckgo.2.der");
    assert_ne!(root_hash, ikh);
    let root = SignedEntry::Precert {
        issuer_key_hash: root_hash,
        tbs: &tbs,
    };
    assert_eq!(verify(sct, root, key), invalid, "root's key hash");
    let with_sct = SignedEntry::Precert {
        issuer_key_hash: ikh,
        tbs: leaf.tbs(),
    };
    assert_eq!(
        verify(sct, with_sct, key),
        invalid,
        "TBS with SCT ext left in"
    );
    let x509 = SignedEntry::X509 { leaf: &leaf_der };
    assert_eq!(verify(sct, x509, key), invalid, "x509_entry over the cert");
    let mut later = sct.clone();
    later.timestamp += 1;
    assert_eq!(verify(&later, good, key), invalid, "timestamp + 1");
    let wyvern = log_key(
        &logs,
        &log_id_b64("wjF+V0UZo0XufzjespBB68fCIVoiv3/Vta12mtkOUs0="),
    );
    assert_eq!(verify(sct, good, wyvern), invalid, "Wyvern2026h2's key");
}

#[test]
fn chromium_uids_cert_extraction_and_invalid_signature() {
    let der = cert("chromium/ct-test-embedded-with-uids.pem");
    let leaf = LeafCert::parse(&der).unwrap();
    let scts = embedded_scts(&leaf);
    assert_eq!(scts.len(), 1);
    let key = public_key(TEST_LOG_KEY);
    assert_eq!(scts[0].log_id, LogId::from_spki(&key));
    assert_eq!(
        scts[0].log_id.to_base64(),
        "3xwuwRUAlFJHqWFoMl3cXHlZ6PfG04j8AC4LvT9012Q="
    );
    assert_eq!(scts[0].timestamp, 1_365_181_456_275);

    // The rebuilt TBS keeps issuerUniqueID and subjectUniqueID, then the extensions.
    let tbs = leaf.precert_tbs().unwrap();
    let outer = ctdns::ct::der::parse_single(&tbs, tag::SEQUENCE).unwrap();
    let mut r = Reader::new(outer.value);
    let mut tags = Vec::new();
    while !r.is_empty() {
        tags.push(r.read_any().unwrap().tag);
    }
    assert_eq!(
        tags,
        [0xa0, 0x02, 0x30, 0x30, 0x30, 0x30, 0x30, 0x81, 0x82, 0xa3],
        "version, serial, sigalg, issuer, validity, subject, spki, [1], [2], [3]"
    );

    let entry = SignedEntry::Precert {
        issuer_key_hash: issuer_key_hash("google-ct-cpp/ca-cert.pem"),
        tbs: &tbs,
    };
    assert_eq!(
        verify(&scts[0], entry, &key),
        Err(SctSignatureError::InvalidSignature)
    );
}

/// RFC 6962 Merkle leaf hashes from certificate-transparency-go: `SHA-256(0x00 ||
/// MerkleTreeLeaf)`, and a `MerkleTreeLeaf` (v1, timestamped_entry) has exactly the
/// bytes of the SCT signed data. This pins `precert_tbs` byte for byte.
#[test]
fn merkle_leaf_hashes_match_certificate_transparency_go() {
    let extras: serde_json::Value =
        serde_json::from_slice(&read("google-ct-go/testdata-extras.json")).unwrap();
    let leaf_hash = |sct: &Sct, entry| {
        let mut input = vec![0u8];
        input.extend(signed_data(sct.timestamp, entry, &sct.extensions).unwrap());
        B64.encode(sha256(&input))
    };

    let test_cert = cert("google-ct-cpp/test-cert.pem");
    let sct = proof("google-ct-cpp/test-cert.proof");
    assert_eq!(
        leaf_hash(&sct, SignedEntry::X509 { leaf: &test_cert }),
        extras["TestCertB64LeafHash"].as_str().unwrap()
    );

    let final_der = cert("google-ct-cpp/test-embedded-cert.pem");
    let tbs = LeafCert::parse(&final_der).unwrap().precert_tbs().unwrap();
    let ikh = issuer_key_hash("google-ct-cpp/ca-cert.pem");
    assert_eq!(
        hex(&ikh),
        extras["issuer_key_hash_ca_cert_hex"].as_str().unwrap()
    );
    let sct = proof("google-ct-cpp/test-embedded-pre-cert.proof");
    let entry = SignedEntry::Precert {
        issuer_key_hash: ikh,
        tbs: &tbs,
    };
    assert_eq!(
        leaf_hash(&sct, entry),
        extras["TestPreCertB64LeafHash"].as_str().unwrap()
    );
}

#[test]
fn invalid_embedded_cert_carries_ct_go_invalid_proof() {
    let extras: serde_json::Value =
        serde_json::from_slice(&read("google-ct-go/testdata-extras.json")).unwrap();
    let hex_proof = extras["TestInvalidProof_hex"].as_str().unwrap();
    let der = cert("google-ct-cpp/test-invalid-embedded-cert.pem");
    let leaf = LeafCert::parse(&der).unwrap();
    let scts = embedded_scts(&leaf);
    assert_eq!(scts.len(), 1);
    assert_eq!(hex(&scts[0].encode()), hex_proof);
}
