//! `ocsp_sct_list` on arbitrary bytes: the input is split (see `ctdns_fuzz::split`) into
//! `serial, response`. Never panics; a list it returns is a slice of the response (it is
//! copied out of an OCTET STRING) and goes on to `parse_sct_list`.
#![no_main]

use ctdns::ct::ocsp::ocsp_sct_list;
use ctdns::ct::sct::parse_sct_list;
use ctdns_fuzz::split;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = split(data, 2);
    let [serial, response] = parts.as_slice() else {
        return;
    };
    if let Ok(Some(list)) = ocsp_sct_list(response, serial) {
        assert!(
            list.len() <= response.len(),
            "SCT list longer than the response"
        );
        assert!(
            response
                .windows(list.len().max(1))
                .any(|w| w == list.as_slice())
                || list.is_empty(),
            "SCT list is not taken from the response"
        );
        let _ = parse_sct_list(&list);
    }
    // The whole input as a response, with an empty and a one-byte serial.
    let _ = ocsp_sct_list(data, &[]);
    let _ = ocsp_sct_list(data, &[1]);
});
