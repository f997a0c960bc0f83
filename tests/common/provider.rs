//! Which rustls crypto provider this build of ctdns runs on: ring with the feature `ring`
//! (the default), else aws-lc-rs (rustls's default provider). The app tests check the
//! configurations they hand to reqwest / hickory and their test servers with it, so a run
//! under `--no-default-features --features aws-lc-rs,...` proves the handshakes used aws-lc-rs.

use rustls::crypto::CryptoProvider;
use rustls::NamedGroup;

/// The name of the selected provider, as the tests report it.
pub const SELECTED: &str = if cfg!(feature = "ring") {
    "ring"
} else {
    "aws-lc-rs"
};

/// Asserts that `provider` is rustls's provider for [`SELECTED`]: its randomness source
/// (`Ring` / `AwsLcRs`), key-exchange groups and cipher suites are that provider's, and
/// the post-quantum X25519MLKEM768 group, which only aws-lc-rs has, is there exactly
/// with aws-lc-rs.
pub fn assert_selected(provider: &CryptoProvider) {
    #[cfg(feature = "ring")]
    let (expected, rng) = (rustls::crypto::ring::default_provider(), "Ring");
    #[cfg(not(feature = "ring"))]
    let (expected, rng) = (rustls::crypto::aws_lc_rs::default_provider(), "AwsLcRs");

    let groups = |p: &CryptoProvider| p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>();
    let suites = |p: &CryptoProvider| {
        p.cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        format!("{:?}", provider.secure_random),
        rng,
        "the {SELECTED} provider's randomness"
    );
    assert_eq!(groups(provider), groups(&expected), "{SELECTED} kx groups");
    assert_eq!(suites(provider), suites(&expected), "{SELECTED} suites");
    assert_eq!(
        groups(provider).contains(&NamedGroup::X25519MLKEM768),
        SELECTED == "aws-lc-rs",
        "X25519MLKEM768 is offered by aws-lc-rs only"
    );
}
