//! The Rust mirrors in lib.rs must match the C records as compiled: read the struct layouts
//! from the object's own BTF (a minimal reader: ELF section table, BTF type section).

use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use watchdog_ebpf::{EventHeader, Prefix, Scope, EVENT_SIZE, PATH2_OFFSET, PATH_OFFSET};

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
}
fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}
fn u64_at(b: &[u8], at: usize) -> usize {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize
}

/// The `.BTF` section of a little-endian ELF64 object.
fn btf_section(elf: &[u8]) -> &[u8] {
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(elf, 0x28),
        u16_at(elf, 0x3a),
        u16_at(elf, 0x3c),
        u16_at(elf, 0x3e),
    );
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(elf, header(shstrndx) + 0x18);
    (0..shnum)
        .find_map(|i| {
            let h = header(i);
            let name_at = strtab + u32_at(elf, h);
            let name = &elf[name_at..name_at + 5];
            (name == b".BTF\0").then(|| {
                let (off, size) = (u64_at(elf, h + 0x18), u64_at(elf, h + 0x20));
                &elf[off..off + size]
            })
        })
        .expect("object has a .BTF section")
}

/// Struct name -> (size, member name -> byte offset).
fn structs(btf: &[u8]) -> HashMap<String, (usize, HashMap<String, usize>)> {
    assert_eq!(u16_at(btf, 0), 0xeb9f, "BTF magic");
    let hdr_len = u32_at(btf, 4);
    let (type_off, type_len) = (u32_at(btf, 8), u32_at(btf, 12));
    let str_off = u32_at(btf, 16);
    let strings = &btf[hdr_len + str_off..];
    let name = |off: usize| {
        let end = strings[off..].iter().position(|&b| b == 0).unwrap();
        String::from_utf8_lossy(&strings[off..off + end]).into_owned()
    };
    let mut out = HashMap::new();
    let types = &btf[hdr_len + type_off..hdr_len + type_off + type_len];
    let mut at = 0;
    while at < types.len() {
        let (name_off, info, size) = (
            u32_at(types, at),
            u32_at(types, at + 4),
            u32_at(types, at + 8),
        );
        let (kind, vlen, kflag) = ((info >> 24) & 0x1f, info & 0xffff, info >> 31);
        at += 12;
        let extra = match kind {
            1 | 14 | 17 => 4,        // int, var, decl_tag
            3 => 12,                 // array
            4 | 5 | 15 => 12 * vlen, // struct, union, datasec
            6 | 13 => 8 * vlen,      // enum, func_proto
            19 => 12 * vlen,         // enum64
            _ => 0,
        };
        if kind == 4 {
            let members = (0..vlen)
                .map(|i| {
                    let m = at + 12 * i;
                    let bits = u32_at(types, m + 8);
                    let bits = if kflag == 1 { bits & 0xff_ffff } else { bits };
                    (name(u32_at(types, m)), bits / 8)
                })
                .collect();
            out.insert(name(name_off), (size, members));
        }
        at += extra;
    }
    out
}

#[test]
fn rust_mirrors_match_the_compiled_records() {
    let Some(object) = watchdog_ebpf::object() else {
        eprintln!("skipping: built without clang, no eBPF object");
        return;
    };
    let structs = structs(btf_section(object));
    let (size, m) = &structs["wd_event"];
    assert_eq!(*size, EVENT_SIZE);
    for (field, offset) in [
        ("root", offset_of!(EventHeader, root)),
        ("tgid", offset_of!(EventHeader, tgid)),
        ("tid", offset_of!(EventHeader, tid)),
        ("op", offset_of!(EventHeader, op)),
        ("flags", offset_of!(EventHeader, flags)),
        ("ret", offset_of!(EventHeader, ret)),
        ("path_len", offset_of!(EventHeader, path_len)),
        ("path2_len", offset_of!(EventHeader, path2_len)),
        ("comm", offset_of!(EventHeader, comm)),
        ("path", PATH_OFFSET),
        ("path2", PATH2_OFFSET),
    ] {
        assert_eq!(m[field], offset, "wd_event.{field}");
    }
    let (size, m) = &structs["wd_prefix"];
    assert_eq!(*size, size_of::<Prefix>());
    assert_eq!(m["len"], offset_of!(Prefix, len));
    assert_eq!(m["s"], offset_of!(Prefix, s));
    let (size, m) = &structs["wd_scope"];
    assert_eq!(*size, size_of::<Scope>());
    for (field, offset) in [
        ("flags", offset_of!(Scope, flags)),
        ("n_write", offset_of!(Scope, n_write)),
        ("n_sensitive", offset_of!(Scope, n_sensitive)),
        ("write", offset_of!(Scope, write)),
        ("sensitive", offset_of!(Scope, sensitive)),
    ] {
        assert_eq!(m[field], offset, "wd_scope.{field}");
    }
}

#[test]
fn object_is_aligned_for_aya() {
    if let Some(object) = watchdog_ebpf::object() {
        assert_eq!(object.as_ptr() as usize % 8, 0);
        assert_eq!(&object[..4], b"\x7fELF");
    }
}
