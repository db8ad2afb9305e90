//! A crate's module import graph: which source files import which, and the
//! rings (strongly connected components) they form.
//!
//! Built from a crate's `src` folder as text: `use` trees and inline paths rooted at
//! `crate`, `super`, `self` or a child module, each resolved to the file that
//! defines what it names (re-exports are followed, so `crate::Liveness` is
//! `strategies/liveness.rs`, not `lib.rs`). Comments and `#[cfg(test)]`
//! items are left out: unit tests may import what they like.
//!

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module path below the crate root: `["supervisor", "plan"]`.
type ModPath = Vec<String>;

struct Module {
    /// The file, relative to the crate's `src`.
    file: String,
    /// Its `use` statements, expanded: (imported name, absolute path), and
    /// whether the statement re-exports (`pub use`, `pub(crate) use`).
    uses: Vec<(String, ModPath, bool)>,
    /// Inline paths rooted at `crate`, `super`, `self` or a child module,
    /// made absolute.
    inline: Vec<ModPath>,
}

/// The `src` folder of the workspace's crate in `folder`.
fn src(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join(folder)
        .join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_path(file: &str) -> ModPath {
    let stem = file.trim_end_matches(".rs");
    let mut parts: ModPath = stem.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts
}

/// The text without comments and string literals (their contents blanked).
fn strip_comments_and_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            '"' => {
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push('"');
            }
            // A char literal of a quote or brace, which the above would misread.
            '\'' if matches!(chars.clone().nth(1), Some('\'')) => {
                chars.next();
                chars.next();
                out.push_str("' '");
            }
            _ => out.push(c),
        }
    }
    out
}

/// The text without items marked `#[cfg(test)]`.
fn strip_test_items(text: &str) -> String {
    let mut out = text.to_owned();
    while let Some(at) = out.find("#[cfg(test)]") {
        let Some(open) = out[at..].find(['{', ';']).map(|i| at + i) else {
            break;
        };
        let mut end = open + 1;
        if out.as_bytes()[open] == b'{' {
            let mut depth = 0;
            for (i, b) in out.bytes().enumerate().skip(open) {
                match b {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        out.replace_range(at..end, "");
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Colons,
    Other(char),
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token::Colons);
            i += 2;
            continue;
        }
        if !c.is_whitespace() {
            out.push(Token::Other(c));
        }
        i += 1;
    }
    out
}

/// Expands a use tree into (name, path) pairs; `tokens` starts after `use`.
fn use_tree(tokens: &[Token], i: &mut usize, prefix: &ModPath, out: &mut Vec<(String, ModPath)>) {
    let mut path = prefix.clone();
    loop {
        match tokens.get(*i) {
            Some(Token::Ident(name)) if name == "as" => {
                *i += 1;
                if let Some(Token::Ident(alias)) = tokens.get(*i) {
                    *i += 1;
                    out.push((alias.clone(), path));
                }
                return;
            }
            Some(Token::Ident(name)) => {
                *i += 1;
                if name != "self" || path.is_empty() {
                    path.push(name.clone());
                }
                if tokens.get(*i) == Some(&Token::Colons) {
                    *i += 1;
                    continue;
                }
                if tokens.get(*i) == Some(&Token::Ident("as".into())) {
                    continue;
                }
                let name = path.last().cloned().unwrap_or_default();
                out.push((name, path));
                return;
            }
            Some(Token::Other('*')) => {
                *i += 1;
                out.push(("*".into(), path));
                return;
            }
            Some(Token::Other('{')) => {
                *i += 1;
                loop {
                    match tokens.get(*i) {
                        Some(Token::Other('}')) => {
                            *i += 1;
                            return;
                        }
                        Some(Token::Other(',')) => *i += 1,
                        None => return,
                        _ => use_tree(tokens, i, &path, out),
                    }
                }
            }
            _ => return,
        }
    }
}

/// Makes a path absolute, if it is rooted in this crate: `crate`, `super`,
/// `self` or one of the module's children.
fn absolute(module: &ModPath, children: &BTreeSet<String>, path: &[String]) -> Option<ModPath> {
    let first = path.first()?;
    let mut base = module.clone();
    let rest = match first.as_str() {
        "crate" => {
            base.clear();
            &path[1..]
        }
        "self" => &path[1..],
        "super" => {
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            rest
        }
        name if children.contains(name) => path,
        _ => return None,
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

fn parse(file: &str, text: &str) -> Module {
    let module = module_path(file);
    let text = strip_test_items(&strip_comments_and_strings(text));
    let toks = tokens(&text);
    let mut children = BTreeSet::new();
    for w in toks.windows(3) {
        if let [Token::Ident(m), Token::Ident(name), Token::Other(';')] = w {
            if m == "mod" {
                children.insert(name.clone());
            }
        }
    }
    let mut uses = Vec::new();
    let mut inline = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Token::Ident("use".into()) {
            // `pub use`, `pub(crate) use`: the statement re-exports.
            let public = match i {
                0 => false,
                _ => {
                    matches!(&toks[i - 1], Token::Ident(p) if p == "pub")
                        || (i >= 4
                            && toks[i - 1] == Token::Other(')')
                            && toks[i - 4] == Token::Ident("pub".into()))
                }
            };
            i += 1;
            let mut found = Vec::new();
            use_tree(&toks, &mut i, &Vec::new(), &mut found);
            for (name, path) in found {
                if let Some(path) = absolute(&module, &children, &path) {
                    uses.push((name, path, public));
                }
            }
            continue;
        }
        // An inline path: ident (:: ident)+, not itself the tail of a path.
        let starts_path = matches!(&toks[i], Token::Ident(_))
            && toks.get(i + 1) == Some(&Token::Colons)
            && (i == 0 || toks[i - 1] != Token::Colons);
        if starts_path {
            let mut path = Vec::new();
            let mut j = i;
            while let Some(Token::Ident(name)) = toks.get(j) {
                path.push(name.clone());
                if toks.get(j + 1) == Some(&Token::Colons) {
                    j += 2;
                } else {
                    break;
                }
            }
            if let Some(path) = absolute(&module, &children, &path) {
                inline.push(path);
            }
            i = j + 1;
            continue;
        }
        i += 1;
    }
    Module {
        file: file.to_owned(),
        uses,
        inline,
    }
}

/// The files of a crate's `src` and the files each imports.
pub(crate) struct Graph {
    pub(crate) edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// The graph of the workspace's crate in `folder` (`framework`, `pool-actors`).
    pub(crate) fn of(folder: &str) -> Self {
        let root = src(folder);
        let mut paths = Vec::new();
        rust_files(&root, &mut paths);
        let modules: BTreeMap<ModPath, Module> = paths
            .iter()
            .filter_map(|p| {
                let file = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = fs::read_to_string(p).expect("readable source");
                // A file of unit tests only (`#![cfg(test)]`) is left out
                // like any `#[cfg(test)]` item.
                let test_only = strip_comments_and_strings(&text)
                    .trim_start()
                    .starts_with("#![cfg(test)]");
                (!test_only).then(|| (module_path(&file), parse(&file, &text)))
            })
            .collect();
        let mut edges = BTreeMap::new();
        for module in modules.values() {
            let mut to = BTreeSet::new();
            let targets = module
                .uses
                .iter()
                .map(|(_, p, _)| p)
                .chain(module.inline.iter());
            for target in targets {
                if let Some(file) = resolve(&modules, target, 0) {
                    if file != module.file {
                        to.insert(file);
                    }
                }
            }
            edges.insert(module.file.clone(), to);
        }
        Graph { edges }
    }

    /// Strongly connected components of more than one file, largest first
    /// (Tarjan's algorithm).
    pub(crate) fn rings(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            next: usize,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            s.index.insert(v, s.next);
            s.low.insert(v, s.next);
            s.next += 1;
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in s.graph.edges.get(v).into_iter().flatten() {
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
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    s.out.push(component);
                }
            }
        }
        let mut state = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            next: 0,
            out: Vec::new(),
        };
        for v in self.edges.keys() {
            if !state.index.contains_key(v.as_str()) {
                visit(&mut state, v);
            }
        }
        let mut rings = state.out;
        rings.sort_by_key(|r| std::cmp::Reverse(r.len()));
        rings
    }

    /// Every file `from` imports, directly or not.
    pub(crate) fn reach(&self, from: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(v) = todo.pop() {
            for w in self.edges.get(&v).into_iter().flatten() {
                if seen.insert(w.clone()) {
                    todo.push(w.clone());
                }
            }
        }
        seen
    }
}

/// The file that defines what `path` names: its longest prefix that is a
/// module, through that module's re-exports of the next name.
fn resolve(modules: &BTreeMap<ModPath, Module>, path: &[String], depth: usize) -> Option<String> {
    if depth > 16 {
        return None;
    }
    let len = (0..=path.len())
        .rev()
        .find(|&n| modules.contains_key(&path[..n]))?;
    let module = &modules[&path[..len]];
    if let Some(name) = path.get(len) {
        let exported = module
            .uses
            .iter()
            .find(|(n, _, public)| *public && n == name);
        if let Some((_, target, _)) = exported {
            let mut target = target.clone();
            target.extend(path[len + 1..].iter().cloned());
            return resolve(modules, &target, depth + 1).or_else(|| Some(module.file.clone()));
        }
    }
    Some(module.file.clone())
}
