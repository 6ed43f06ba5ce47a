//! Where the inline pipeline spends its time on a benign 64 KiB text result (diagnostic, not a
//! benchmark of record: `cargo bench` and `cargo xtask bench` are).
use std::time::Instant;
use watchdog::alert::Direction;
use watchdog::inspect::registry::{message_inspectors, pipeline_for, text_detectors};
use watchdog::inspect::{Inspector, SubjectMeta};
use watchdog::jsonrpc::{Id, Kind};
use watchdog::policy::Policy;

fn main() {
    let sentence = "The quick brown fox jumps over the lazy dog; café, naïve, 東京, emoji 🦊. ";
    let text = sentence.repeat(64 * 1024 / sentence.len());
    let raw = serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": 42, "result": {"content": [{"type": "text", "text": text}], "isError": false}})).unwrap();
    let id = Id("42".into());
    let meta = SubjectMeta {
        direction: Direction::ServerToClient,
        server: "s",
        kind: Kind::Result,
        method: Some("tools/call"),
        id: Some(&id),
    };
    let n = 200;
    let time = |what: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        let per = t.elapsed().as_secs_f64() / n as f64;
        println!(
            "{what:40} {:8.1} µs  {:8.0} MB/s",
            per * 1e6,
            raw.len() as f64 / per / 1e6
        );
    };
    let p = pipeline_for(Policy::default(), Default::default());
    time("whole pipeline", &mut || {
        std::hint::black_box(p.inspect(meta, &raw));
    });
    let readme = include_str!("../../README.md").repeat(8);
    let doc = serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": 42, "result": {"content": [{"type": "text", "text": &readme[..64 * 1024]}], "isError": false}})).unwrap();
    time("whole pipeline, 64 KiB of README (slow path)", &mut || {
        std::hint::black_box(p.inspect(meta, &doc));
    });
    {
        use watchdog::inspect::text::{Normalized, Role, Site, TextView};
        let body = &readme[..64 * 1024];
        time("normalize 64 KiB README", &mut || {
            std::hint::black_box(Normalized::new(body));
        });
        let normalized = Normalized::new(body);
        let site = Site {
            role: Role::Content,
            pointer: "/result/content/0/text".into(),
            key: Some("text".into()),
            is_key: false,
            tool: None,
        };
        for d in text_detectors() {
            if !d.applies(&meta, &site) {
                continue;
            }
            let view = TextView {
                meta: &meta,
                site: &site,
                original: body,
                normalized: &normalized,
            };
            time(&format!("scan {}", d.name()), &mut || {
                let mut hits = Vec::new();
                d.scan(&view, &mut hits);
                std::hint::black_box(hits);
            });
        }
    }
    for d in text_detectors() {
        let name = d.name();
        time(&format!("raw_check {name}"), &mut || {
            std::hint::black_box(d.raw_check(&raw));
        });
    }
    // Once per message for every detector that shares it (over the bytes alone, as ahead of the
    // inspection).
    for check in watchdog::inspect::text::SharedCheck::ALL {
        time(&format!("shared check {check:?}"), &mut || {
            std::hint::black_box(check.run(&raw, None));
        });
    }
    let ti = watchdog::inspect::text::TextInspector::new(text_detectors());
    time("text inspector prefilter", &mut || {
        std::hint::black_box(ti.prefilter(&meta, &raw));
    });
    let oauth = watchdog::inspect::oauth::OAuth::new(Default::default());
    time("oauth prefilter", &mut || {
        std::hint::black_box(oauth.prefilter(&meta, &raw));
    });
    let lits: Vec<String> = text_detectors()
        .iter()
        .filter(|d| d.direction() != Some(Direction::ClientToServer))
        .flat_map(|d| d.triggers().iter().map(|t| t.to_ascii_lowercase()))
        .collect();
    println!("response-side trigger literals: {}", lits.len());
    if std::env::var_os("LIST").is_some() {
        for d in text_detectors() {
            println!("{}: {:?}", d.name(), d.triggers());
        }
        return;
    }
    for kind in [
        aho_corasick::AhoCorasickKind::DFA,
        aho_corasick::AhoCorasickKind::ContiguousNFA,
    ] {
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .kind(Some(kind))
            .build(&lits)
            .unwrap();
        time(&format!("aho-corasick {kind:?}"), &mut || {
            std::hint::black_box(ac.is_match(&raw));
        });
    }
    for m in message_inspectors() {
        let name = m.name();
        time(&format!("message inspector {name}"), &mut || {
            std::hint::black_box(m.prefilter(&meta, &raw));
        });
    }
}
