//! `parse_sct_list` on arbitrary bytes: never panics, and a list that parses re-encodes
//! (when it held only v1 SCTs) to exactly the input bytes, each SCT through `Sct::encode`.
#![no_main]

use ctdns::ct::sct::{encode_sct_list, parse_sct, parse_sct_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A single SCT body on its own must not panic either.
    if let Ok(sct) = parse_sct(data, 0) {
        assert_eq!(
            sct.encode(),
            data,
            "single SCT does not re-encode to its input"
        );
    }
    let Ok(list) = parse_sct_list(data) else {
        return;
    };
    assert!(!list.scts.is_empty() || list.skipped_unknown_version > 0);
    if list.scts.is_empty() {
        return;
    }
    let encoded: Vec<Vec<u8>> = list.scts.iter().map(|s| s.encode()).collect();
    let again = encode_sct_list(encoded.iter().map(Vec::as_slice));
    let reparsed = parse_sct_list(&again).expect("re-encoded v1 SCTs must parse");
    assert_eq!(reparsed.scts, list.scts, "SCTs changed in a round trip");
    assert_eq!(reparsed.skipped_unknown_version, 0);
    if list.skipped_unknown_version == 0 {
        assert_eq!(
            again, data,
            "a v1-only list does not re-encode to its input"
        );
    }
});
