//! The module layout stays a layered one: inside each crate, the modules that share a
//! parent never import each other in a circle, and the few rules ARCHITECTURE.md names
//! (commands never reach the session, the worker's wire messages are a leaf) hold.
//!
//! The check reads the sources rather than the compiler's output: every `crate::…`,
//! `super::…` and `self::…` path in a module's files (test modules excluded) is resolved
//! to the module it names, and each reference becomes an edge between the two children of
//! the modules' closest common ancestor. `leader::session::dispatch` using
//! `crate::commands::ddl::create` is the edge `session → commands` in the crate root; a
//! file in `commands/` using `super::Outcome` is no edge at all (a child may use its
//! parent). Every scope's graph must be acyclic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside one crate: `[]` is the crate root, `["commands", "ddl"]` is
/// `crate::commands::ddl`.
type ModPath = Vec<String>;

/// An edge `from → to` between siblings under `scope`, with the first place seen.
#[derive(Default)]
struct Graph {
    edges: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, String>>>,
}

impl Graph {
    fn add(&mut self, scope: &[String], from: &str, to: &str, place: String) {
        self.edges
            .entry(scope.to_vec())
            .or_default()
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_insert(place);
    }

    /// Each circle found, as `scope: a → b → a (evidence…)`.
    fn cycles(&self, krate: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (scope, edges) in &self.edges {
            for component in strongly_connected(edges) {
                if component.len() < 2 {
                    continue;
                }
                let members: BTreeSet<&String> = component.iter().collect();
                let evidence: Vec<String> = component
                    .iter()
                    .flat_map(|from| {
                        edges[from]
                            .iter()
                            .filter(|(to, _)| members.contains(to))
                            .map(move |(to, place)| format!("    {from} → {to} ({place})"))
                    })
                    .collect();
                let name = if scope.is_empty() {
                    krate.to_string()
                } else {
                    format!("{krate}::{}", scope.join("::"))
                };
                found.push(format!(
                    "import cycle in {name} between {}:\n{}",
                    component.join(", "),
                    evidence.join("\n")
                ));
            }
        }
        found
    }

    fn imports(&self, scope: &[&str], from: &str, to: &str) -> Option<&String> {
        let scope: ModPath = scope.iter().map(|s| s.to_string()).collect();
        self.edges.get(&scope)?.get(from)?.get(to)
    }
}

/// Tarjan's algorithm over one scope's sibling graph.
fn strongly_connected(edges: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

/// Every `.rs` file under `src` with the module it defines.
fn module_files(src: &Path) -> Vec<(PathBuf, ModPath)> {
    fn walk(dir: &Path, prefix: &ModPath, out: &mut Vec<(PathBuf, ModPath)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut inner = prefix.clone();
                inner.push(name);
                walk(&path, &inner, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut module = prefix.clone();
                if !matches!(stem, "lib" | "main" | "mod") {
                    module.push(stem.to_string());
                }
                out.push((path, module));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, &Vec::new(), &mut out);
    out
}

/// The source with comments, string and char literals blanked (newlines kept, so line
/// numbers still match) and `#[cfg(test)]` items removed.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or(0);
        let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if c == b'/' && next == b'/' {
            let end = text[i..].find('\n').map_or(b.len(), |n| i + n);
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == b'/' && next == b'*' {
            let mut depth = 0;
            let mut j = i;
            while j < b.len() {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &b[i..j]);
            i = j;
        } else if !ident_before && (c == b'r' || (c == b'b' && next == b'r')) && {
            let start = if c == b'b' { i + 2 } else { i + 1 };
            let hashes = b[start..].iter().take_while(|&&h| h == b'#').count();
            b.get(start + hashes) == Some(&b'"')
        } {
            let start = if c == b'b' { i + 2 } else { i + 1 };
            let hashes = b[start..].iter().take_while(|&&h| h == b'#').count();
            let body = start + hashes + 1;
            let closing = format!("\"{}", "#".repeat(hashes));
            let end = text[body..]
                .find(&closing)
                .map_or(b.len(), |n| body + n + closing.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}', '"'), or a lifetime ('a) left as is.
            let len = if next == b'\\' {
                b[i + 2..].iter().position(|&q| q == b'\'').map(|n| n + 3)
            } else {
                let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            match len {
                Some(len) => {
                    blank(&mut out, &b[i..i + len]);
                    i += len;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    strip_test_items(&out)
}

/// Blanks each item that follows `#[cfg(test)]` (a `mod tests { … }` or a `use`).
fn strip_test_items(code: &str) -> String {
    let mut out = code.to_string();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|n| from + n) {
        let bytes = out.as_bytes();
        let mut j = at;
        let mut depth = 0usize;
        while j < bytes.len() {
            match bytes[j] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        j += 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    j += 1;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let blanked: String = out[at..j]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..j, &blanked);
        from = j;
    }
    out
}

/// The paths a use tree or an inline path starting at `code[at..]` names, each as its
/// segments (`crate::{a::b, c}` → `[crate, a, b]`, `[crate, c]`).
fn paths_at(code: &str, at: usize) -> Vec<Vec<String>> {
    fn ident(code: &[u8], i: &mut usize) -> Option<String> {
        let start = *i;
        while *i < code.len() && (code[*i].is_ascii_alphanumeric() || code[*i] == b'_') {
            *i += 1;
        }
        (*i > start).then(|| String::from_utf8_lossy(&code[start..*i]).to_string())
    }
    fn skip_ws(code: &[u8], i: &mut usize) {
        while *i < code.len() && code[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn tree(code: &[u8], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        loop {
            skip_ws(code, i);
            if code.get(*i) == Some(&b'{') {
                *i += 1;
                loop {
                    skip_ws(code, i);
                    if code.get(*i) == Some(&b'}') {
                        *i += 1;
                        return;
                    }
                    tree(code, i, path.clone(), out);
                    skip_ws(code, i);
                    match code.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b'}') => {
                            *i += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            if code.get(*i) == Some(&b'*') {
                *i += 1;
                out.push(path);
                return;
            }
            match ident(code, i) {
                Some(name) => path.push(name),
                None => {
                    out.push(path);
                    return;
                }
            }
            skip_ws(code, i);
            if code[*i..].starts_with(b"::") {
                *i += 2;
            } else {
                // `;`, `(`, `,`, `as alias`, …: the path ends here.
                if code[*i..].starts_with(b"as")
                    && code.get(*i + 2).is_some_and(u8::is_ascii_whitespace)
                {
                    *i += 2;
                    skip_ws(code, i);
                    ident(code, i);
                }
                out.push(path);
                return;
            }
        }
    }
    let mut out = Vec::new();
    let mut i = at;
    tree(code.as_bytes(), &mut i, Vec::new(), &mut out);
    out
}

/// The module `segments` (relative to `file_module`) names: the longest prefix that is
/// a module of the crate.
fn resolve(
    file_module: &[String],
    segments: &[String],
    modules: &BTreeSet<ModPath>,
) -> Option<ModPath> {
    let mut base: ModPath = file_module.to_vec();
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {}
        _ => return None,
    }
    // A file `a/b.rs` is module `a::b` and `a/mod.rs` is `a`; either way `super` is the
    // module's parent.
    while rest.first().map(String::as_str) == Some("super") {
        base.pop()?;
        rest = &rest[1..];
    }
    let mut target = base;
    let mut best = target.clone();
    for segment in rest {
        target.push(segment.clone());
        if modules.contains(&target) {
            best = target.clone();
        } else {
            break;
        }
    }
    Some(best)
}

fn crate_graph(src: &Path) -> Graph {
    let files = module_files(src);
    let modules: BTreeSet<ModPath> = files.iter().map(|(_, m)| m.clone()).collect();
    let mut graph = Graph::default();
    for (path, module) in &files {
        if module.last().map(String::as_str) == Some("tests") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let code = code_only(&text);
        let bytes = code.as_bytes();
        for keyword in ["crate::", "super::", "self::"] {
            let mut from = 0;
            while let Some(at) = code[from..].find(keyword).map(|n| from + n) {
                from = at + keyword.len();
                let before = at.checked_sub(1).map(|p| bytes[p]);
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    continue;
                }
                // `super::super::x` is read once, from its first `super`.
                if keyword == "super::" && code[..at].trim_end().ends_with("::") {
                    continue;
                }
                let line = code[..at].matches('\n').count() + 1;
                let relative = path.strip_prefix(root()).unwrap_or(path);
                for segments in paths_at(&code, at) {
                    let Some(target) = resolve(module, &segments, &modules) else {
                        continue;
                    };
                    let common = module
                        .iter()
                        .zip(&target)
                        .take_while(|(a, b)| a == b)
                        .count();
                    if common < module.len() && common < target.len() {
                        graph.add(
                            &module[..common],
                            &module[common],
                            &target[common],
                            format!("{}:{line}", relative.display()),
                        );
                    }
                }
            }
        }
    }
    graph
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_module_imports_in_a_circle() {
    let mut cycles = Vec::new();
    for krate in ["leader", "worker", "storage"] {
        cycles.extend(crate_graph(&root().join(krate).join("src")).cycles(krate));
    }
    assert!(cycles.is_empty(), "{}", cycles.join("\n\n"));
}

#[test]
fn layers_point_one_way() {
    let leader = crate_graph(&root().join("leader/src"));
    let worker = crate_graph(&root().join("worker/src"));
    let storage = crate_graph(&root().join("storage/src"));
    let mut broken = Vec::new();
    let mut refuse = |graph: &Graph, krate: &str, from: &str, to: &[&str]| {
        for to in to {
            if let Some(place) = graph.imports(&[], from, to) {
                broken.push(format!("{krate}: {from} must not import {to} ({place})"));
            }
        }
    };
    // The session dispatches to the commands; they see only the statement context.
    refuse(&leader, "leader", "commands", &["session", "wire"]);
    refuse(&leader, "leader", "session", &["wire"]);
    refuse(&leader, "leader", "wire", &["commands"]);
    for below in ["sql", "catalog", "plan", "system", "cluster"] {
        refuse(&leader, "leader", below, &["session", "wire", "commands"]);
    }
    // Planning reads the system tables; the system tables never plan.
    refuse(&leader, "leader", "system", &["plan"]);
    // The catalog and the cluster are independent of each other and of everything that
    // reads them; the dialect is below all of them.
    refuse(&leader, "leader", "catalog", &["plan", "system", "cluster"]);
    refuse(&leader, "leader", "cluster", &["catalog", "plan", "system"]);
    refuse(
        &leader,
        "leader",
        "sql",
        &["catalog", "plan", "system", "cluster"],
    );
    // The wire messages between leader and worker import nothing above them.
    refuse(
        &worker,
        "worker",
        "protocol",
        &["node", "exec", "load", "unload"],
    );
    for below in ["exec", "load", "unload"] {
        refuse(&worker, "worker", below, &["node"]);
    }
    // Encodings never reach back into the segment that dispatches to them.
    refuse(&storage, "storage", "encodings", &["segment"]);
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_reader_finds_what_it_should() {
    let code = code_only(
        "use crate::{a::{b, c as d}, e};\nlet s = \"crate::x\"; // crate::y\nfn f<'a>(c: char) { '\"'; super::g::h(); }\n#[cfg(test)]\nmod tests { use crate::z; }\n",
    );
    let mut all = Vec::new();
    for keyword in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(keyword).map(|n| from + n) {
            from = at + keyword.len();
            all.extend(paths_at(&code, at));
        }
    }
    let all: Vec<String> = all.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        all,
        vec!["crate::a::b", "crate::a::c", "crate::e", "super::g::h"]
    );
}
