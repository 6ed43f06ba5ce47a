//! The frame reader on arbitrary bytes with a small limit: no panic, frames never exceed the limit,
//! and everything that is not an oversize frame comes back byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchdog::jsonrpc::{Frame, FrameReader};

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let max = 1024 + (data.first().copied().unwrap_or(0) as usize);
        let mut reader = FrameReader::new(data, max);
        while let Some(frame) = reader.next_frame().await.unwrap() {
            match frame {
                Frame::Line(line) => {
                    assert!(line.len() <= max);
                    assert!(!line.contains(&b'\n'));
                }
                Frame::Oversize { len, head } => assert!(len as usize > max && head.len() <= len as usize),
            }
        }
    });
});
