//! Envelope parsing and head recovery on arbitrary frames: no panic; a replaced id keeps every
//! other byte.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use watchdog::jsonrpc::head::read_head;
use watchdog::jsonrpc::{Id, Message, Parsed};

fuzz_target!(|data: &[u8]| {
    let _ = read_head(data);
    if let Ok(Parsed::Single(m)) = Message::parse_frame(Bytes::copy_from_slice(data)) {
        if let Some(id) = m.id.clone() {
            let other = m.with_id(&Id::from_string("mcp-watchdog:7"));
            let back = other.with_id(&id);
            assert_eq!(back.raw, m.raw);
        }
    }
});
