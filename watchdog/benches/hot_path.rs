//! The per-message hot path without processes or pipes: framing, envelope parsing and inspection.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::collections::HashMap;
use watchdog::alert::Direction;
use watchdog::inspect::{Pipeline, SubjectMeta};
use watchdog::jsonrpc::{FrameReader, Id, Kind, Message, Parsed};
use watchdog::policy::{Mode, Policy, ToolFilter};

/// Mixed-script text: a non-ASCII character every few words.
const MIXED: &[&str] =
    &["The quick brown fox jumps over the lazy dog; café, naïve, 東京, emoji 🦊. "];

/// Plain English prose, as `cargo xtask bench`'s echo server sends.
const PROSE: &[&str] = &[
    "The garden behind the old library was quiet in the early morning. ",
    "A small boat drifted slowly across the lake while two herons watched from the reeds. ",
    "Fresh bread from the corner bakery filled the street with a warm and pleasant smell. ",
    "Rain clouds gathered over the hills, and the farmers brought the sheep down to the valley. ",
];

fn tool_result(sentences: &[&str], size: usize) -> Vec<u8> {
    let mut text = String::new();
    for sentence in sentences.iter().cycle() {
        if text.len() >= size {
            break;
        }
        text.push_str(sentence);
    }
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 42, "result": {"content": [{"type": "text", "text": text}], "isError": false}});
    serde_json::to_vec(&body).unwrap()
}

/// The proxy's real pipeline: the tool policy and every text detector.
fn pipeline() -> Pipeline {
    let mut filters = HashMap::new();
    filters.insert(
        "bench".to_string(),
        ToolFilter::new(&[], &["delete_*".into()]).unwrap(),
    );
    watchdog::inspect::registry::pipeline_for(Policy::new(Mode::Enforce, HashMap::new()), filters)
}

/// A `tools/call` request or its response, to or from the bench's server.
fn tools_call(direction: Direction, kind: Kind, id: &Id) -> SubjectMeta<'_> {
    SubjectMeta {
        direction,
        server: "bench",
        kind,
        method: Some("tools/call"),
        id: Some(id),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("hot_path");
    for size in [1024usize, 64 * 1024] {
        let frame = tool_result(MIXED, size);
        group.throughput(Throughput::Bytes(frame.len() as u64));

        let mut stream = Vec::new();
        for _ in 0..64 {
            stream.extend_from_slice(&frame);
            stream.push(b'\n');
        }
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("frame_64_messages", size),
            &stream,
            |b, input| {
                b.iter(|| {
                    rt.block_on(async {
                        let mut reader = FrameReader::new(&input[..], 64 << 20);
                        let mut n = 0;
                        while reader.next_frame().await.unwrap().is_some() {
                            n += 1;
                        }
                        assert_eq!(n, 64);
                    })
                })
            },
        );

        group.throughput(Throughput::Bytes(frame.len() as u64));
        let raw = Bytes::from(frame.clone());
        group.bench_with_input(BenchmarkId::new("parse_envelope", size), &raw, |b, raw| {
            b.iter(|| match Message::parse_frame(raw.clone()).unwrap() {
                Parsed::Single(m) => assert_eq!(m.kind, Kind::Result),
                Parsed::Batch(_) => unreachable!(),
            })
        });

        let p = pipeline();
        let id = Id("42".into());
        let meta = tools_call(Direction::ServerToClient, Kind::Result, &id);
        group.bench_with_input(
            BenchmarkId::new("inspect_tool_result", size),
            &raw,
            |b, raw| b.iter(|| p.inspect(meta, raw)),
        );
        let prose = tool_result(PROSE, size);
        group.throughput(Throughput::Bytes(prose.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("inspect_prose_result", size),
            &prose,
            |b, raw| b.iter(|| p.inspect(meta, raw)),
        );
    }

    // The request `cargo xtask bench` sends; its arguments hold no string, so the argument
    // families pass it over after a syntax walk.
    let call = Bytes::from_static(
        br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"size":1024}}}"#,
    );
    let p = pipeline();
    let id = Id("7".into());
    let meta = tools_call(Direction::ClientToServer, Kind::Request, &id);
    group.throughput(Throughput::Bytes(call.len() as u64));
    group.bench_with_input(
        BenchmarkId::new("inspect_call_request", call.len()),
        &call,
        |b, raw| b.iter(|| p.inspect(meta, raw)),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
