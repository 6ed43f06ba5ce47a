//! Instruction tags: `<IMPORTANT>`, `<SYSTEM>`, `<INSTRUCTIONS>`, `<system-reminder>` and
//! friends, with attributes, closed or running to the end of the text.

use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

/// One tag block (ranges in the normalized text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagBlock {
    /// From the opening tag through the closing tag (or the end of the text when unclosed; from
    /// the start of the text for a closing tag whose opening lies before it).
    pub block: Range<usize>,
    /// What the tags enclose.
    pub body: Range<usize>,
    pub name: String,
    /// The name only ever means "instructions for an AI" (`system_prompt`, `ai_instructions`);
    /// otherwise it also names ordinary elements (DocBook `<important>`, Maven `<system>`).
    pub ai_only: bool,
}

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<[ \t]*(/?)[ \t]*([a-z][a-z0-9_:\-]{0,47})").expect("tag pattern compiles")
});

/// Names that also belong to ordinary markup.
const SHARED_NAMES: &[&str] = &[
    "important",
    "system",
    "instructions",
    "instruction",
    "admin",
    "administrator",
    "critical",
    "hidden",
    "secret",
    "urgent",
    "override",
    "directive",
    "directives",
    "sys",
];

/// Words that, in a compound tag name, make it about an AI.
const AI_WORDS: &[&str] = &[
    "ai",
    "llm",
    "assistant",
    "gpt",
    "claude",
    "reminder",
    "jailbreak",
];

/// Words that may join shared names into a compound (`system_prompt`, `new_instructions`).
const COMPOUND_WORDS: &[&str] = &[
    "prompt", "message", "note", "new", "real", "true", "for", "to", "the", "priority",
];

/// Whether `name` is an instruction tag, and if so whether it is AI-only.
fn classify(name: &str) -> Option<bool> {
    let parts: Vec<&str> = name
        .split(['_', '-', ':'])
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [] => None,
        [one] if SHARED_NAMES.contains(one) => Some(false),
        [one] => matches!(*one, "assistant" | "systemprompt" | "jailbreak").then_some(true),
        _ if parts.iter().any(|p| AI_WORDS.contains(p)) => Some(true),
        _ => {
            let known = |p: &&str| SHARED_NAMES.contains(p) || COMPOUND_WORDS.contains(p);
            (parts.iter().all(known)
                && parts
                    .iter()
                    .any(|p| SHARED_NAMES.contains(p) || *p == "prompt"))
            .then_some(true)
        }
    }
}

struct Tag {
    closing: bool,
    name: String,
    ai_only: bool,
    range: Range<usize>,
}

/// How far an opening tag's attributes may run before its `>`.
const ATTRIBUTE_REACH: usize = 256;

/// Every instruction tag block in `text` (normalized), in order, not overlapping.
pub fn tag_blocks(text: &str) -> Vec<TagBlock> {
    let tags: Vec<Tag> = TAG
        .captures_iter(text)
        .filter_map(|c| {
            let m = c.get(0).expect("whole match");
            let name = c[2].to_string();
            let ai_only = classify(&name)?;
            let rest = &text.as_bytes()[m.end()..(m.end() + ATTRIBUTE_REACH).min(text.len())];
            let end = rest
                .iter()
                .position(|&b| b == b'>' || b == b'<')
                .filter(|&i| rest[i] == b'>')
                .map_or(m.end(), |i| m.end() + i + 1);
            Some(Tag {
                closing: !c[1].is_empty(),
                name,
                ai_only,
                range: m.start()..end,
            })
        })
        .collect();
    let mut out: Vec<TagBlock> = Vec::new();
    let mut covered_to = 0;
    for (i, tag) in tags.iter().enumerate() {
        if tag.range.start < covered_to {
            continue;
        }
        let (block, body) = if tag.closing {
            if out.is_empty() {
                // Its opening came before this text (an earlier block, or cut off).
                (0..tag.range.end, 0..tag.range.start)
            } else {
                (tag.range.clone(), tag.range.end..tag.range.end)
            }
        } else {
            match tags[i + 1..]
                .iter()
                .find(|t| t.closing && t.name == tag.name)
            {
                Some(close) => (
                    tag.range.start..close.range.end,
                    tag.range.end..close.range.start,
                ),
                None => (tag.range.start..text.len(), tag.range.end..text.len()),
            }
        };
        covered_to = block.end;
        out.push(TagBlock {
            block,
            body,
            name: tag.name.clone(),
            ai_only: tag.ai_only,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str) -> Vec<(&str, bool)> {
        tag_blocks(text)
            .into_iter()
            .map(|b| (&text[b.block], b.ai_only))
            .collect()
    }

    #[test]
    fn closed_unclosed_attributed_and_orphan_blocks() {
        assert_eq!(
            blocks("a <important>do x</important> b"),
            [("<important>do x</important>", false)]
        );
        assert_eq!(
            blocks("a <system priority=\"high\">\ndo x"),
            [("<system priority=\"high\">\ndo x", false)]
        );
        assert_eq!(
            blocks("tant>do x</important> tail"),
            [("tant>do x</important>", false)]
        );
        assert_eq!(
            blocks("<system_prompt>x</system_prompt><ai-note>y</ai-note>"),
            [
                ("<system_prompt>x</system_prompt>", true),
                ("<ai-note>y</ai-note>", true)
            ]
        );
    }

    #[test]
    fn ordinary_elements_are_not_instruction_tags() {
        assert!(blocks("<systemitem>x</systemitem><system-out>ok</system-out>").is_empty());
        assert!(blocks("<user-agent>curl</user-agent><importantly>").is_empty());
        assert!(blocks("a < b and c > d").is_empty());
    }
}
