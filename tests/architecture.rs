//! The layers of docs/ARCHITECTURE.md hold in the code: every module
//! refers (`crate::NAME`) only to modules its row of the table lists, the
//! listed ones sit in its layer or below, the modules' uses form no cycle,
//! every module of `src/` has a row, and no command file of `src/cli` uses
//! another's items.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug)]
struct Row {
    layer: u32,
    may_use: BTreeSet<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The table of docs/ARCHITECTURE.md: `| module | layer | may use | ... |`.
fn table() -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", module, layer, may use, what, ""
        if cells.len() < 5 || !cells[0].is_empty() {
            continue;
        }
        let Ok(layer) = cells[2].parse::<u32>() else { continue };
        let may_use = cells[3].split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        rows.insert(cells[1].to_owned(), Row { layer, may_use });
    }
    assert!(rows.len() > 10, "the table of docs/ARCHITECTURE.md was not found");
    rows
}

/// Source text without line comments (doc comments name modules freely).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("source file");
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The top-level modules a source text names after `crate::`, including
/// every item of a `crate::{a, b::c}` group.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = code.as_bytes();
    let ident = |from: usize| -> String {
        code[from..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
    };
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i + "crate::".len();
        at = start;
        // `$crate::` in macros, or part of a longer name.
        if at > 7 && (b[at - 8].is_ascii_alphanumeric() || b[at - 8] == b'_' || b[at - 8] == b'$') {
            continue;
        }
        if b.get(start) == Some(&b'{') {
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in code[start..].char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        item_start = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ => {
                        if item_start && depth == 1 {
                            let name = ident(start + j);
                            if !name.is_empty() {
                                out.insert(name);
                            }
                        }
                        item_start = false;
                    }
                }
            }
        } else {
            let name = ident(start);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Each top-level module of `src/` with the modules it refers to.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("component").as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let refs = crate_refs(&code(&f));
        out.entry(module.clone()).or_default().extend(refs.into_iter().filter(|r| *r != module));
    }
    out
}

#[test]
fn the_reference_finder_sees_paths_and_groups() {
    let refs =
        crate_refs("use crate::{net::Mac, vswitch::{keys, Port}};\nlet x = crate::ovsdb::Uuid::nil();\n$crate::skip");
    assert_eq!(refs, ["net", "ovsdb", "vswitch"].map(str::to_owned).into_iter().collect());
}

#[test]
fn every_module_uses_only_what_its_row_lists() {
    let table = table();
    let uses = uses();
    let mut wrong = Vec::new();
    for (module, refs) in &uses {
        let Some(row) = table.get(module) else {
            wrong.push(format!("{module}: no row in docs/ARCHITECTURE.md"));
            continue;
        };
        for r in refs {
            if !row.may_use.contains(r) {
                wrong.push(format!("{module} uses {r}, which its row does not list"));
            }
        }
    }
    for module in table.keys() {
        if !uses.contains_key(module) {
            wrong.push(format!("{module}: a row in docs/ARCHITECTURE.md, but no such module in src/"));
        }
    }
    assert!(wrong.is_empty(), "docs/ARCHITECTURE.md and the code disagree:\n{}", wrong.join("\n"));
}

#[test]
fn modules_use_only_their_layer_or_below_and_form_no_cycle() {
    let table = table();
    for (module, row) in &table {
        for u in &row.may_use {
            let other = table.get(u).unwrap_or_else(|| panic!("{module} may use {u}, which has no row"));
            assert!(other.layer <= row.layer, "{module} (layer {}) may use {u} (layer {})", row.layer, other.layer);
        }
    }
    // Depth-first search over the uses actually made.
    let uses = uses();
    fn visit(
        m: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        match state.get(m) {
            Some(2) => return,
            Some(1) => panic!("modules use each other in a cycle: {} -> {m}", path.join(" -> ")),
            _ => {}
        }
        state.insert(m.to_owned(), 1);
        path.push(m.to_owned());
        for u in uses.get(m).into_iter().flatten() {
            visit(u, uses, state, path);
        }
        path.pop();
        state.insert(m.to_owned(), 2);
    }
    let mut state = BTreeMap::new();
    for m in uses.keys() {
        visit(m, &uses, &mut state, &mut Vec::new());
    }
}

#[test]
fn the_shared_vocabulary_is_below_attach() {
    let uses = uses();
    for m in ["pipeline", "agent", "cluster"] {
        assert!(!uses.get(m).is_some_and(|u| u.contains("attach")), "{m} uses crate::attach");
    }
}

#[test]
fn no_command_file_uses_another() {
    let dir = root().join("src/cli");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let commands: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| s != "mod")
        .collect();
    let mut wrong = Vec::new();
    for f in &files {
        let me = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if me == "mod" {
            continue;
        }
        let text = code(f);
        for other in &commands {
            if *other == me {
                continue;
            }
            let path = format!("super::{other}::");
            let import = format!("use super::{other};");
            if text.contains(&path) || text.contains(&import) || text.contains(&format!("super::{{{other}")) {
                wrong.push(format!("cli/{me}.rs uses cli/{other}.rs"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "command files use each other (move what they share to cli/mod.rs):\n{}",
        wrong.join("\n")
    );
}
