//! The `ctdns` binary; see `ctdns --help`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ctdns::cli::main()
}
