//! Every inspector, through the real pipeline, on arbitrary messages in both directions: no panic
//! (a panic would be caught and fail closed, so it is asserted away here), and a rewrite is valid
//! JSON that keeps the id.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchdog::alert::Direction;
use watchdog::policy::Policy;
use watchdog::inspect::{Outcome, SubjectMeta};
use watchdog::jsonrpc::{Id, Kind};

const METHODS: [&str; 8] = ["tools/call", "tools/list", "initialize", "resources/read", "prompts/get", "sampling/createMessage", "notifications/message", "completion/complete"];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let pipeline = watchdog::inspect::registry::pipeline_for(Policy::default(), Default::default());
    let direction = if data[0] & 1 == 0 { Direction::ServerToClient } else { Direction::ClientToServer };
    let kind = [Kind::Request, Kind::Notification, Kind::Result, Kind::Error][(data[0] >> 1) as usize % 4];
    let method = METHODS[(data[1] as usize) % METHODS.len()];
    let id = Id("1".into());
    let meta = SubjectMeta { direction, server: "fuzz", kind, method: Some(method), id: Some(&id) };
    let inspection = pipeline.inspect(meta, &data[2..]);
    assert!(inspection.alerts.iter().all(|a| a.rule != "INSPECTOR-FAULT"), "an inspector panicked");
    if let Outcome::Rewrite(bytes) = inspection.outcome {
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("rewrites are JSON");
        let before: serde_json::Value = serde_json::from_slice(&data[2..]).expect("only JSON is rewritten");
        assert_eq!(v.get("id"), before.get("id"));
    }
});
