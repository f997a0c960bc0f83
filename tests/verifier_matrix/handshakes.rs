//! Real rustls handshakes on loopback for the matrix cases marked `tls`.

use crate::*;

/// A server certificate that can be swapped between connections.
#[derive(Debug)]
pub(crate) struct Swappable(Mutex<Arc<CertifiedKey>>);

impl Swappable {
    pub(crate) fn new(leaf: &IssuedLeaf, ocsp: &[u8]) -> Arc<Self> {
        Arc::new(Self(Mutex::new(certified(leaf, ocsp))))
    }

    pub(crate) fn set(&self, leaf: &IssuedLeaf, ocsp: &[u8]) {
        *self.0.lock().unwrap() = certified(leaf, ocsp);
    }
}

impl ResolvesServerCert for Swappable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.lock().ok().map(|k| k.clone())
    }
}

fn certified(leaf: &IssuedLeaf, ocsp: &[u8]) -> Arc<CertifiedKey> {
    let key = ctdns::provider::default_provider()
        .key_provider
        .load_private_key(leaf.key_der())
        .unwrap();
    let mut ck = CertifiedKey::new(leaf.chain.clone(), key);
    ck.ocsp = (!ocsp.is_empty()).then(|| ocsp.to_vec());
    Arc::new(ck)
}

/// The test kit's ping server on 127.0.0.1:0 presenting what `resolver` holds, speaking only
/// `versions`, for `connections` connections.
pub(crate) async fn serve(
    resolver: Arc<Swappable>,
    connections: usize,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> PingServer {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    PingServer::start(LOCALHOST, Arc::new(config), connections)
        .await
        .unwrap()
}

/// One refusal as the observer saw it: server name, rule, chain length, OCSP bytes.
type Seen = (String, &'static str, usize, Vec<u8>);

/// Records every refusal the verifier reports.
#[derive(Debug, Default)]
struct Recorder {
    events: Mutex<Vec<Seen>>,
}

impl RefusalObserver for Recorder {
    fn refused(&self, event: &RefusalEvent<'_>) {
        let rule = event
            .decision
            .refusal
            .as_ref()
            .map_or("none", Refusal::rule);
        self.events.lock().unwrap().push((
            event.server_name.clone(),
            rule,
            event.chain.len(),
            event.ocsp.to_vec(),
        ));
    }
}

async fn run_tls(case: &Case, name: ServerName<'static>) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(leaf) = &case.leaf else {
        return vec!["handshake case without a key".into()];
    };
    let mut presented = leaf.clone();
    presented.chain = case.chain.clone();
    let server = serve(
        Swappable::new(&presented, &case.ocsp),
        1,
        rustls::DEFAULT_VERSIONS,
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    let verifier = case
        .verifier
        .clone()
        .with_observer(recorder.clone())
        .with_label(case.name.clone());
    let config = client_config(Arc::new(verifier), &[]).unwrap();
    let result = ping(config, server.addr(), name.clone()).await;
    let served = server.finish().await;
    let refusal = match &result {
        Ok(()) => None,
        Err(e) => match Refusal::find_in(e) {
            Some(r) => Some(r),
            None => {
                errors.push(format!("handshake failed without a refusal: {e}"));
                return errors;
            }
        },
    };
    let report = match refusal {
        Some(Refusal::CtPolicy(report)) => Some(&**report),
        _ => None,
    };
    judge(&case.expect, refusal, report, &mut errors);
    let events = recorder.events.lock().unwrap();
    match refusal {
        None => {
            if !events.is_empty() {
                errors.push(format!("accepted, but the observer saw {events:?}"));
            }
            if !matches!(served.as_slice(), [Ok(())]) {
                errors.push(format!("accepted, but the server saw {served:?}"));
            }
        }
        Some(r) => match events.as_slice() {
            [(server_name, rule, chain_len, ocsp)] => {
                if *rule != r.rule()
                    || *chain_len != case.chain.len()
                    || *ocsp != case.ocsp
                    || *server_name != name.to_str()
                {
                    errors.push(format!(
                        "observer saw ({server_name}, {rule}, {chain_len} certs, {} OCSP bytes)",
                        ocsp.len()
                    ));
                }
            }
            other => errors.push(format!("observer saw {} events", other.len())),
        },
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_through_rustls_handshakes() {
    let m = matrix();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &m.cases {
        let Some(name) = case.tls.clone() else {
            continue;
        };
        ran += 1;
        for e in run_tls(case, name).await {
            failures.push(format!("[{} / TLS] {e}", case.name));
        }
    }
    assert!(ran >= 10, "only {ran} handshake cases");
    assert!(
        failures.is_empty(),
        "{} of {ran} handshake cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
