//! DoT and DoH response handling on arbitrary upstream bytes, then the stub's
//! `Answer::from_upstream` + `render`.
//!
//! The input is split (see `ctdns_fuzz::split`) into `flags, query, upstream bytes`. A
//! query that is not a usable stub query is replaced by a fixed one. Then:
//! - DoT: the query is padded (`pad_query`) as the DoT transport sends it; the upstream
//!   bytes are a TCP stream cut into frames by `take_frame` (the DoT reader's); each frame goes through
//!   the checks of the DoT reader (`Header::parse`, QR, `wire::question` equal to the
//!   query's), then `set_message_id` and `strip_opt` (when an OPT was added) or `layout`;
//! - DoH: `PreparedQuery::new` (padded as DoT pads) + `accept_response` on the whole
//!   upstream bytes, and `check_head` on a response head made from `flags`;
//! - stub: every response the transports would return goes through
//!   `Answer::from_upstream` and `render` for UDP and TCP.
//!
//! Checked: never panics; padded queries are a multiple of 128 bytes and strip back to the
//! query; `strip_opt` leaves no OPT record; an accepted DoH body keeps every byte but the
//! ID (the client's) and the OPT record ctdns added for padding; a rendered answer carries the client's ID and question and
//! fits the limit.
#![no_main]

use ctdns::stub::answer::Answer;
use ctdns::stub::message::{classify, Classified, ClientQuery};
use ctdns::stub::{CacheOptions, Protocol};
use ctdns::fuzzing::{check_head, take_frame, PreparedQuery};
use ctdns::upstream::msgid::{message_id, set_message_id};
use ctdns::upstream::padding::{pad_query, strip_opt, PadOutcome, QUERY_BLOCK};
use ctdns::wire::{self, Header};
use ctdns_fuzz::split;
use libfuzzer_sys::fuzz_target;

/// `www.example.com. IN A`, ID 0x1234, RD, no EDNS.
const FIXED_QUERY: &[u8] = &[
    0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm',
    b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
];

fn stub_answer(response: &[u8], q: &ClientQuery<'_>, client: &[u8]) {
    let opts = CacheOptions::default();
    let Ok(answer) = Answer::from_upstream(response, q, &opts) else {
        return;
    };
    let _ = (answer.cache_lifetime(), answer.response_code());
    for proto in [Protocol::Udp, Protocol::Tcp] {
        let limit = q.size_limit(proto);
        for age in [0, 1, u32::MAX] {
            let rendered = answer.render(q, age, limit);
            let bytes = &rendered.bytes;
            assert!(bytes.len() <= limit, "rendered answer over the limit");
            assert_eq!(
                bytes.get(..2),
                client.get(..2),
                "rendered answer lost the ID"
            );
            let header = Header::parse(bytes).expect("rendered answer has a header");
            assert!(header.is_response());
            assert_eq!(
                wire::question(bytes).ok(),
                wire::question(client).ok(),
                "rendered answer has another question"
            );
        }
    }
}

fn dot(query: &[u8], stream: &[u8], q: &ClientQuery<'_>) {
    let Ok(padded) = pad_query(query) else {
        return;
    };
    let added_opt = padded.outcome == PadOutcome::AddedOpt;
    if matches!(
        padded.outcome,
        PadOutcome::AddedOpt | PadOutcome::PaddedExistingOpt
    ) {
        assert_eq!(
            padded.bytes.len() % QUERY_BLOCK,
            0,
            "padding missed the block"
        );
        let layout = wire::layout(&padded.bytes).expect("padded query walks");
        assert!(layout.opt.is_some_and(|o| o.is_last));
    }
    if added_opt {
        assert_eq!(
            strip_opt(&padded.bytes).as_deref(),
            Ok(query),
            "stripping the added OPT does not give the query back"
        );
    }
    let Ok(question) = wire::question(query) else {
        return;
    };
    let Some(original_id) = message_id(query) else {
        return;
    };
    let mut buf = stream.to_vec();
    let mut frames = 0;
    while let Some(mut frame) = take_frame(&mut buf) {
        frames += 1;
        if frames > 16 {
            break;
        }
        let Ok(header) = Header::parse(&frame) else {
            continue;
        };
        if !header.is_response() || wire::question(&frame).as_ref() != Ok(&question) {
            continue;
        }
        assert!(set_message_id(&mut frame, original_id));
        let response = if added_opt {
            match strip_opt(&frame) {
                Ok(stripped) => {
                    let layout = wire::layout(&stripped).expect("stripped response walks");
                    assert!(layout.opt.is_none(), "OPT record left after strip_opt");
                    stripped
                }
                Err(_) => continue,
            }
        } else {
            if wire::layout(&frame).is_err() {
                continue;
            }
            frame
        };
        stub_answer(&response, q, query);
    }
}

fn doh(query: &[u8], body: &[u8], flags: u8, q: &ClientQuery<'_>) {
    let Ok(prepared) = PreparedQuery::new(query) else {
        return;
    };
    // DoH queries are padded exactly as DoT's (RFC 8467), then sent with ID 0.
    let Ok(padded) = pad_query(query) else {
        panic!("PreparedQuery accepted a query pad_query refuses");
    };
    let added_opt = padded.outcome == PadOutcome::AddedOpt;
    assert_eq!(prepared.wire().get(..2), Some(&[0u8, 0][..]));
    assert_eq!(
        prepared.wire().get(2..),
        padded.bytes.get(2..),
        "DoH query not padded as DoT's"
    );
    if let Ok(accepted) = prepared.accept_response(body) {
        assert_eq!(
            accepted.get(..2),
            query.get(..2),
            "DoH response ID not restored"
        );
        // Every byte but the ID is the server's, less the OPT record ctdns added (if any).
        let expected = if added_opt {
            strip_opt(body).expect("accepted response strips")
        } else {
            body.to_vec()
        };
        assert_eq!(
            accepted.get(2..),
            expected.get(2..),
            "DoH response body changed"
        );
        // (hickory-proto accepts some bodies the strict walker does not; the stub refuses
        // those, so only a body that walks is checked for a leftover OPT.)
        if let (true, Ok(layout)) = (added_opt, wire::layout(&accepted)) {
            assert!(layout.opt.is_none(), "added OPT left in the DoH response");
        }
        stub_answer(&accepted, q, query);
    }
    let status = [200u16, 204, 301, 500][usize::from(flags & 3)];
    let content_type = [
        "application/dns-message",
        " Application/DNS-Message ; charset=x",
        "application/dns-json",
        "",
    ][usize::from((flags >> 2) & 3)];
    let mut head = http::Response::builder().status(status);
    if !content_type.is_empty() {
        head = head.header(http::header::CONTENT_TYPE, content_type);
    }
    if flags & 16 != 0 {
        head = head.header(
            http::header::CONTENT_LENGTH,
            String::from_utf8_lossy(body.get(..20).unwrap_or(body)).into_owned(),
        );
    }
    if let Ok(head) = head.body(()) {
        let _ = check_head(&head, 65_535);
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data, 3);
    let [flags, query, upstream] = parts.as_slice() else {
        return;
    };
    let flags = flags.first().copied().unwrap_or(0);
    let (query, q) = match classify(query, Protocol::Udp) {
        Classified::Query(q) => (*query, q),
        _ => match classify(FIXED_QUERY, Protocol::Udp) {
            Classified::Query(q) => (FIXED_QUERY, q),
            other => panic!("fixed query does not classify as a query: {other:?}"),
        },
    };
    dot(query, upstream, &q);
    doh(query, upstream, flags, &q);
    // The raw bytes straight into the stub, as a transport that checks nothing would pass
    // them, and through the wire walkers.
    stub_answer(upstream, &q, query);
    let _ = wire::layout(upstream);
    let _ = strip_opt(upstream);
});
