//! `bench-echo`: a minimal, fast stdio MCP server for the benchmark.
//!
//! Answers `initialize`, lists one `echo` tool, and answers `tools/call` with
//! `{"size": N}` arguments with N bytes of benign English-like text. Anything else
//! with an id gets an empty result; notifications and responses are ignored.
//! Replies copy the request id byte for byte.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::io::{self, BufRead, BufReader, BufWriter, Write};

/// Size of the precomputed text; larger results repeat it.
const TEXT_CHUNK: usize = 1 << 20;

/// Plain sentences that no content inspector should find suspicious: no quotes, backslashes,
/// control characters, URLs, secrets or imperative phrasing.
const SENTENCES: &[&str] = &[
    "The garden behind the old library was quiet in the early morning. ",
    "A small boat drifted slowly across the lake while two herons watched from the reeds. ",
    "Fresh bread from the corner bakery filled the street with a warm and pleasant smell. ",
    "Rain clouds gathered over the hills, and the farmers brought the sheep down to the valley. ",
    "The museum opened a new room about maps, clocks and the history of navigation. ",
    "Children played in the park until the lamps came on along the river path. ",
    "The train to the coast was late, so the travelers shared tea and stories on the platform. ",
    "In autumn the maple trees turned red and gold, and the air smelled of woodsmoke. ",
];

#[derive(Deserialize)]
struct Request<'a> {
    // `deserialize_with` keeps an explicit `"id": null` as Some(null) so it is echoed too.
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct CallParams {
    #[serde(default)]
    arguments: Option<CallArgs>,
}

#[derive(Deserialize)]
struct CallArgs {
    #[serde(default)]
    size: Option<u64>,
}

const INITIALIZE_RESULT: &str = r#"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"bench-echo","version":"0.1.0"}}"#;
const TOOLS_LIST_RESULT: &str = r#"{"tools":[{"name":"echo","description":"Returns the requested number of bytes of sample text.","inputSchema":{"type":"object","properties":{"size":{"type":"integer","minimum":0}},"required":["size"]}}]}"#;

fn main() -> io::Result<()> {
    let text = sample_text();
    let mut input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut line = Vec::with_capacity(1 << 12);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let body = line.trim_ascii();
        if body.is_empty() {
            continue;
        }
        let req: Request = match serde_json::from_slice(body) {
            Ok(req) => req,
            Err(_) => {
                out.write_all(
                    br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
                )?;
                out.write_all(b"\n")?;
                out.flush()?;
                continue;
            }
        };
        // Notifications (no id) and responses (no method) need no reply.
        let (Some(id), Some(method)) = (req.id, req.method) else {
            continue;
        };
        out.write_all(br#"{"jsonrpc":"2.0","id":"#)?;
        out.write_all(id.get().as_bytes())?;
        out.write_all(br#","result":"#)?;
        match method.as_ref() {
            "initialize" => out.write_all(INITIALIZE_RESULT.as_bytes())?,
            "tools/list" => out.write_all(TOOLS_LIST_RESULT.as_bytes())?,
            "tools/call" => {
                let size = req
                    .params
                    .and_then(|p| serde_json::from_str::<CallParams>(p.get()).ok())
                    .and_then(|p| p.arguments)
                    .and_then(|a| a.size)
                    .unwrap_or(0);
                out.write_all(br#"{"content":[{"type":"text","text":""#)?;
                write_text(&mut out, &text, size)?;
                out.write_all(br#""}],"isError":false}"#)?;
            }
            _ => out.write_all(b"{}")?,
        }
        out.write_all(b"}\n")?;
        out.flush()?;
    }
}

/// Writes exactly `size` bytes of the sample text, repeating the chunk as needed.
fn write_text(out: &mut impl Write, text: &[u8], size: u64) -> io::Result<()> {
    let mut left = size;
    while left > 0 {
        let n = left.min(text.len() as u64) as usize;
        out.write_all(&text[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// ASCII only, so any prefix is valid JSON string content.
fn sample_text() -> Vec<u8> {
    let mut text = Vec::with_capacity(TEXT_CHUNK);
    for sentence in SENTENCES.iter().cycle() {
        if text.len() >= TEXT_CHUNK {
            break;
        }
        text.extend_from_slice(sentence.as_bytes());
    }
    text.truncate(TEXT_CHUNK);
    text
}
